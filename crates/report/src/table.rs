//! A table is a value: a header and rows of cells, rendered as Markdown, HTML or CSV. Every
//! table of the reports is built once and rendered three ways, so the formats cannot disagree.

use hipfrac_core::escape_html;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; a short row is padded with empty cells to the header's width.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert!(row.len() <= self.header.len(), "a row wider than its table's header");
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// A GitHub-flavoured pipe table (`|` in cells escaped).
    pub fn markdown(&self) -> String {
        let cell = |c: &String| c.replace('|', "\\|");
        let mut t = format!(
            "| {} |\n|{}\n",
            self.header.iter().map(cell).collect::<Vec<_>>().join(" | "),
            "---|".repeat(self.header.len())
        );
        for row in &self.rows {
            let _ = writeln!(t, "| {} |", row.iter().map(cell).collect::<Vec<_>>().join(" | "));
        }
        t
    }

    /// An HTML `<table>` with a `th` header row; `class` is its CSS class (none when empty).
    pub fn html(&self, class: &str) -> String {
        let mut h = if class.is_empty() {
            "<table>".to_string()
        } else {
            format!("<table class=\"{}\">", escape_html(class))
        };
        h.push_str("<tr>");
        for c in &self.header {
            let _ = write!(h, "<th>{}</th>", escape_html(c));
        }
        h.push_str("</tr>");
        for row in &self.rows {
            h.push_str("<tr>");
            for c in row {
                let _ = write!(h, "<td>{}</td>", escape_html(c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        h
    }

    /// CSV (RFC 4180 quoting; formula-leading cells neutralised, see
    /// [`hipfrac_core::csv_safe`]).
    pub fn csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header).expect("CSV into memory");
        for row in &self.rows {
            w.write_record(row).expect("CSV into memory");
        }
        hipfrac_core::csv_safe::neutralise(&w.into_inner().expect("CSV into memory"))
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn one_table_three_renderings() {
        let mut t = Table::new(["class", "Se"]);
        t.row(["DF <a|b>", "0.50"]);
        t.row(["micro"]);
        assert_eq!(
            t.markdown(),
            "| class | Se |\n|---|---|\n| DF <a\\|b> | 0.50 |\n| micro |  |\n"
        );
        assert_eq!(t.html(""), "<table><tr><th>class</th><th>Se</th></tr><tr><td>DF &lt;a|b&gt;</td><td>0.50</td></tr><tr><td>micro</td><td></td></tr></table>");
        assert_eq!(String::from_utf8(t.csv()).unwrap(), "class,Se\nDF <a|b>,0.50\nmicro,\n");
    }
}
