//! Small SVG plots for the self-contained HTML report (no plotting dependency needed for
//! lines on a unit square).

use hipfrac_core::escape_html as escape;
use std::fmt::Write;

/// One line (or set of markers) of a plot.
pub struct Series {
    pub name: String,
    pub colour: String,
    pub points: Vec<(f64, f64)>,
    /// Draw markers instead of a line.
    pub markers: bool,
}

/// A plot of `series` on [0, 1] × [0, 1] with axis labels, a legend and, when `diagonal`, the
/// line y = x dashed.
pub fn unit_plot(title: &str, x_label: &str, y_label: &str, series: &[Series], diagonal: bool) -> String {
    let (w, h, left, top, size) = (470.0, 330.0, 50.0, 28.0, 250.0);
    let px = |x: f64| left + x.clamp(0.0, 1.0) * size;
    let py = |y: f64| top + (1.0 - y.clamp(0.0, 1.0)) * size;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        left,
        escape(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#444"/>"##
    );
    for i in 0..=5 {
        let v = i as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            px(v),
            top,
            px(v),
            top + size
        );
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            left,
            py(v),
            left + size,
            py(v)
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{v:.1}</text>"#,
            px(v),
            top + size + 14.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{v:.1}</text>"#,
            left - 4.0,
            py(v) + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + size / 2.0,
        top + size + 30.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="12" y="{}" text-anchor="middle" transform="rotate(-90 12 {})">{}</text>"#,
        top + size / 2.0,
        top + size / 2.0,
        escape(y_label)
    );
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 3"/>"##,
            px(0.0),
            py(0.0),
            px(1.0),
            py(1.0)
        );
    }
    for (i, series) in series.iter().enumerate() {
        if series.markers {
            for &(x, y) in series.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                    px(x),
                    py(y),
                    series.colour
                );
            }
        } else if !series.points.is_empty() {
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                series.colour
            );
        }
        let ly = top + 6.0 + 15.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{}"/>"#,
            left + size + 8.0,
            ly,
            series.colour
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            left + size + 22.0,
            ly + 9.0,
            escape(&series.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Standard base64 (RFC 4648) for data URIs.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn plot_is_well_formed_svg() {
        let s = super::unit_plot(
            "t <1>",
            "x",
            "y",
            &[super::Series {
                name: "a&b".into(),
                colour: "#f00".into(),
                points: vec![(0.0, 0.0), (0.5, f64::NAN), (1.0, 1.0)],
                markers: false,
            }],
            true,
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("t &lt;1&gt;") && s.contains("a&amp;b"));
        assert!(s.contains(r#"points="50.0,278.0 300.0,28.0""#), "{s}");
    }
}
