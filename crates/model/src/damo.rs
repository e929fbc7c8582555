//! DAMO-YOLO: TinyNAS-L20 backbone → GiraffeNeckV2 (RepGFPN) → ZeroHead.

use crate::layers::{Act, ConvBn, RepConv};
use hipfrac_core::Preset;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// What to build. `t()` is the paper's model; `nano()` a small preset for CPU tests and the
/// demo. Travels with the weights (config.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The preset this configuration was built from. Files written before presets were saved
    /// lack it; they are read as the preset whose numbers they match ([`ModelConfig::preset`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Input channels: 1 for radiographs (no fake RGB); 3 reproduces the official model.
    pub in_channels: i64,
    pub num_classes: i64,
    /// Channel multiplier on every layer (1.0 = DAMO-YOLO-T).
    pub width: f64,
    /// Block-count multiplier (1.0 = DAMO-YOLO-T).
    pub depth: f64,
    /// Distribution bins per box side are `reg_max + 1`.
    pub reg_max: i64,
    /// An image-level head beside the boxes: the probability that the whole image is what the
    /// boxes belong on (a localiser's "an AP hip or pelvis film"), from the neck's outputs
    /// averaged over the image. Every box score is multiplied by it ([`HeadOutput::scope_logits`]).
    /// Files written before it lack it (no head).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scope_head: bool,
}

impl ModelConfig {
    /// DAMO-YOLO-T (TinyNAS-L20 + GiraffeNeckV2 + ZeroHead), as `damoyolo_tinynasL20_T`.
    pub fn t(in_channels: i64, num_classes: i64) -> Self {
        ModelConfig {
            preset: Some(Preset::T),
            in_channels,
            num_classes,
            width: 1.0,
            depth: 1.0,
            reg_max: 16,
            scope_head: false,
        }
    }

    /// A quarter-width, shallow preset for CPU tests and the demo.
    pub fn nano(in_channels: i64, num_classes: i64) -> Self {
        ModelConfig {
            preset: Some(Preset::Nano),
            in_channels,
            num_classes,
            width: 0.25,
            depth: 0.34,
            reg_max: 16,
            scope_head: false,
        }
    }

    /// The configuration of `preset`.
    pub fn of(preset: Preset, in_channels: i64, num_classes: i64) -> Self {
        match preset {
            Preset::T => ModelConfig::t(in_channels, num_classes),
            Preset::Nano => ModelConfig::nano(in_channels, num_classes),
        }
    }

    /// The preset: the saved one, else the one whose width, depth and bins these are (none
    /// for a hand-made configuration).
    pub fn preset(&self) -> Option<Preset> {
        self.preset.or_else(|| {
            [Preset::T, Preset::Nano].into_iter().find(|&p| {
                let known = ModelConfig::of(p, self.in_channels, self.num_classes);
                (known.width, known.depth, known.reg_max) == (self.width, self.depth, self.reg_max)
            })
        })
    }

    /// The same configuration with an image-level scope head (`true`) or without.
    pub fn with_scope_head(self, scope_head: bool) -> Self {
        ModelConfig { scope_head, ..self }
    }

    fn channels(&self, c: i64) -> i64 {
        if self.width == 1.0 {
            return c;
        }
        // Multiples of 8, at least 8.
        (((c as f64 * self.width) / 8.0).round() as i64).max(1) * 8
    }

    fn blocks(&self, n: i64) -> i64 {
        ((n as f64 * self.depth).round() as i64).max(1)
    }

    /// Output strides of the three levels.
    pub const STRIDES: [i64; 3] = [8, 16, 32];
}

/// TinyNAS-L20 stages: (out, bottleneck, stride, blocks).
const STAGES: [(i64, i64, i64, i64); 5] = [
    (64, 24, 2, 2),
    (96, 64, 2, 2),
    (192, 96, 2, 2),
    (192, 152, 1, 2),
    (384, 192, 2, 1),
];
const STEM: i64 = 24;
const NECK_IN: [i64; 3] = [96, 192, 384];
const NECK_OUT: [i64; 3] = [64, 128, 256];

/// Residual K1KX block: 1×1 conv-BN, act, RepConv 3×3 (no act), + shortcut (not at stride
/// 2; projected when channels change), act.
#[derive(Debug)]
struct ResBlock {
    conv1: ConvBn,
    conv2: RepConv,
    projection: Option<ConvBn>,
    stride: i64,
}

impl ResBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, bottleneck: i64, stride: i64, fused: bool) -> Self {
        ResBlock {
            conv1: ConvBn::new(&(p / "conv1"), cin, bottleneck, 1, 1, Act::Identity, fused),
            conv2: RepConv::new(&(p / "conv2"), bottleneck, cout, stride, Act::Identity, fused),
            projection: (cin != cout && stride != 2)
                .then(|| ConvBn::new(&(p / "residual_proj"), cin, cout, 1, 1, Act::Identity, fused)),
            stride,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        // Activations and the shortcut sum in place: each acts on a tensor made here whose
        // producer's backward does not need it.
        let y = self.conv1.forward_t(x, train).relu_();
        let mut y = self.conv2.forward_t(&y, train);
        if self.stride != 2 {
            let _ = match &self.projection {
                Some(p) => y.g_add_(&p.forward_t(x, train)),
                None => y.g_add_(x),
            };
        }
        y.relu_()
    }

    fn fold_into(&self, target: &mut ResBlock) {
        self.conv1.fold_into(&mut target.conv1);
        self.conv2.fold_into(&mut target.conv2);
        if let (Some(a), Some(b)) = (&self.projection, &mut target.projection) {
            a.fold_into(b);
        }
    }
}

/// Spatial pyramid pooling (5/9/13) with SiLU, after the first block of the last stage.
#[derive(Debug)]
struct Spp {
    conv1: ConvBn,
    conv2: ConvBn,
}

impl Spp {
    fn new(p: &nn::Path, c: i64, fused: bool) -> Self {
        let hidden = c / 2;
        Spp {
            conv1: ConvBn::new(&(p / "conv1"), c, hidden, 1, 1, Act::Silu, fused),
            conv2: ConvBn::new(&(p / "conv2"), hidden * 4, c, 1, 1, Act::Silu, fused),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.conv1.forward_t(x, train);
        let pools: Vec<Tensor> = [5i64, 9, 13]
            .iter()
            .map(|&k| x.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false))
            .collect();
        let mut all = vec![x];
        all.extend(pools);
        self.conv2.forward_t(&Tensor::cat(&all, 1), train)
    }
}

/// Focus stem + five stages; returns the stride 8, 16, 32 features.
#[derive(Debug)]
struct Backbone {
    stem: ConvBn,
    stages: Vec<(Vec<ResBlock>, Option<Spp>)>,
}

impl Backbone {
    fn new(p: &nn::Path, config: &ModelConfig, fused: bool) -> Self {
        let stem_out = config.channels(STEM);
        // Focus: space-to-depth (4× channels), then 3×3 conv-BN-ReLU.
        let stem = ConvBn::new(&(p / "stem"), config.in_channels * 4, stem_out, 3, 1, Act::Relu, fused);
        let mut cin = stem_out;
        let mut stages = Vec::new();
        for (index, &(out, bottleneck, stride, blocks)) in STAGES.iter().enumerate() {
            let (out, bottleneck) = (config.channels(out), config.channels(bottleneck));
            let stage = p / format!("stage{}", index + 1);
            let mut list = Vec::new();
            for b in 0..config.blocks(blocks) {
                let (i, s) = if b == 0 { (cin, stride) } else { (out, 1) };
                list.push(ResBlock::new(&(&stage / b), i, out, bottleneck, s, fused));
            }
            let spp = (index == STAGES.len() - 1).then(|| Spp::new(&(&stage / "spp"), out, fused));
            stages.push((list, spp));
            cin = out;
        }
        Backbone { stem, stages }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        // [B, C, H, W] → [B, 4C, H/2, W/2]: top-left, bottom-left, top-right, bottom-right.
        let tl = x.slice(2, 0, None, 2).slice(3, 0, None, 2);
        let bl = x.slice(2, 1, None, 2).slice(3, 0, None, 2);
        let tr = x.slice(2, 0, None, 2).slice(3, 1, None, 2);
        let br = x.slice(2, 1, None, 2).slice(3, 1, None, 2);
        let mut y = self.stem.forward_t(&Tensor::cat(&[tl, bl, tr, br], 1), train);
        let mut outputs = Vec::new();
        for (index, (blocks, spp)) in self.stages.iter().enumerate() {
            for (b, block) in blocks.iter().enumerate() {
                y = block.forward_t(&y, train);
                if b == 0 {
                    if let Some(spp) = spp {
                        y = spp.forward_t(&y, train);
                    }
                }
            }
            // Stages 2, 4 and 5 feed the neck (strides 8, 16, 32).
            if index == 1 || index == 3 || index == 4 {
                outputs.push(y.shallow_clone());
            }
        }
        outputs // [B, 96, H/8, W/8], [B, 192, H/16, W/16], [B, 384, H/32, W/32] at width 1
    }

    fn fold_into(&self, target: &mut Backbone) {
        self.stem.fold_into(&mut target.stem);
        for ((blocks, spp), (target_blocks, target_spp)) in self.stages.iter().zip(target.stages.iter_mut()) {
            for (a, b) in blocks.iter().zip(target_blocks.iter_mut()) {
                a.fold_into(b);
            }
            if let (Some(a), Some(b)) = (spp, target_spp) {
                a.conv1.fold_into(&mut b.conv1);
                a.conv2.fold_into(&mut b.conv2);
            }
        }
    }
}

/// BasicBlock_3x3_Reverse: RepConv 3×3 (ReLU), conv-BN 3×3 (ReLU), + shortcut.
#[derive(Debug)]
struct RepBlock {
    conv2: RepConv,
    conv1: ConvBn,
}

/// CSP stage of the neck: two 1×1 splits, `n` RepBlocks on one, all outputs concatenated
/// and fused by a 1×1 conv.
#[derive(Debug)]
struct CspStage {
    conv1: ConvBn,
    conv2: ConvBn,
    blocks: Vec<RepBlock>,
    conv3: ConvBn,
}

impl CspStage {
    fn new(p: &nn::Path, cin: i64, cout: i64, n: i64, fused: bool) -> Self {
        let first = cout / 2;
        let mid = cout - first;
        let blocks = (0..n)
            .map(|i| {
                let b = p / "convs" / i;
                RepBlock {
                    conv2: RepConv::new(&(&b / "conv2"), mid, mid, 1, Act::Relu, fused),
                    conv1: ConvBn::new(&(&b / "conv1"), mid, mid, 3, 1, Act::Relu, fused),
                }
            })
            .collect();
        CspStage {
            conv1: ConvBn::new(&(p / "conv1"), cin, first, 1, 1, Act::Relu, fused),
            conv2: ConvBn::new(&(p / "conv2"), cin, mid, 1, 1, Act::Relu, fused),
            blocks,
            conv3: ConvBn::new(&(p / "conv3"), mid * n + first, cout, 1, 1, Act::Relu, fused),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut outputs = vec![self.conv1.forward_t(x, train)];
        let mut y = self.conv2.forward_t(x, train);
        for block in &self.blocks {
            let z = block.conv1.forward_t(&block.conv2.forward_t(&y, train), train);
            y = &y + z;
            outputs.push(y.shallow_clone());
        }
        self.conv3.forward_t(&Tensor::cat(&outputs, 1), train)
    }

    fn fold_into(&self, target: &mut CspStage) {
        self.conv1.fold_into(&mut target.conv1);
        self.conv2.fold_into(&mut target.conv2);
        for (a, b) in self.blocks.iter().zip(target.blocks.iter_mut()) {
            a.conv2.fold_into(&mut b.conv2);
            a.conv1.fold_into(&mut b.conv1);
        }
        self.conv3.fold_into(&mut target.conv3);
    }
}

/// GiraffeNeckV2 (RepGFPN): nodes x3…x7 fusing the three backbone levels by concatenation,
/// nearest upsampling and 3×3 stride-2 convolutions.
#[derive(Debug)]
struct Neck {
    bu_conv13: ConvBn,
    merge_3: CspStage,
    bu_conv24: ConvBn,
    merge_4: CspStage,
    merge_5: CspStage,
    bu_conv57: ConvBn,
    merge_7: CspStage,
    bu_conv46: ConvBn,
    bu_conv76: ConvBn,
    merge_6: CspStage,
}

impl Neck {
    fn new(p: &nn::Path, config: &ModelConfig, fused: bool) -> Self {
        let [i0, i1, i2] = NECK_IN.map(|c| config.channels(c));
        let [o0, o1, o2] = NECK_OUT.map(|c| config.channels(c));
        let n = config.blocks(3);
        let down = |name: &str, c: i64| ConvBn::new(&(p / name), c, c, 3, 2, Act::Relu, fused);
        let merge = |name: &str, cin: i64, cout: i64| CspStage::new(&(p / name), cin, cout, n, fused);
        Neck {
            bu_conv13: down("bu_conv13", i1),
            merge_3: merge("merge_3", i1 + i2, i2),
            bu_conv24: down("bu_conv24", i0),
            merge_4: merge("merge_4", i0 + i1 + i2, i1),
            merge_5: merge("merge_5", i1 + i0, o0),
            bu_conv57: down("bu_conv57", o0),
            merge_7: merge("merge_7", o0 + i1, o1),
            bu_conv46: down("bu_conv46", i1),
            bu_conv76: down("bu_conv76", o1),
            merge_6: merge("merge_6", i1 + o1 + i2, o2),
        }
    }

    fn forward_t(&self, features: &[Tensor], train: bool) -> Vec<Tensor> {
        let (x2, x1, x0) = (&features[0], &features[1], &features[2]);
        let up = |x: &Tensor| x.upsample_nearest2d([x.size()[2] * 2, x.size()[3] * 2], None, None);
        let x3 = self.merge_3.forward_t(
            &Tensor::cat(&[x0.shallow_clone(), self.bu_conv13.forward_t(x1, train)], 1),
            train,
        );
        let x4 = self.merge_4.forward_t(
            &Tensor::cat(&[x1.shallow_clone(), self.bu_conv24.forward_t(x2, train), up(&x3)], 1),
            train,
        );
        let x5 = self
            .merge_5
            .forward_t(&Tensor::cat(&[x2.shallow_clone(), up(&x4)], 1), train);
        let x7 = self.merge_7.forward_t(
            &Tensor::cat(&[x4.shallow_clone(), self.bu_conv57.forward_t(&x5, train)], 1),
            train,
        );
        let x6 = self.merge_6.forward_t(
            &Tensor::cat(
                &[
                    x3,
                    self.bu_conv46.forward_t(&x4, train),
                    self.bu_conv76.forward_t(&x7, train),
                ],
                1,
            ),
            train,
        );
        vec![x5, x7, x6] // strides 8, 16, 32
    }

    fn fold_into(&self, t: &mut Neck) {
        self.bu_conv13.fold_into(&mut t.bu_conv13);
        self.merge_3.fold_into(&mut t.merge_3);
        self.bu_conv24.fold_into(&mut t.bu_conv24);
        self.merge_4.fold_into(&mut t.merge_4);
        self.merge_5.fold_into(&mut t.merge_5);
        self.bu_conv57.fold_into(&mut t.bu_conv57);
        self.merge_7.fold_into(&mut t.merge_7);
        self.bu_conv46.fold_into(&mut t.bu_conv46);
        self.bu_conv76.fold_into(&mut t.bu_conv76);
        self.merge_6.fold_into(&mut t.merge_6);
    }
}

/// Raw head outputs over all anchor points of the three levels (level-major, row-major).
#[derive(Debug)]
pub struct HeadOutput {
    /// Class logits `[B, N, num_classes]` (sigmoid gives quality-aware scores).
    pub class_logits: Tensor,
    /// Box-side distribution logits `[B, N, 4, reg_max + 1]` (left, top, right, bottom).
    pub box_logits: Tensor,
    /// Points per level (H·W at strides 8, 16, 32).
    pub level_sizes: Vec<(i64, i64)>,
    /// The image-level scope logit `[B]` of a model with a scope head
    /// ([`ModelConfig::scope_head`]): its sigmoid scales every box score of the image.
    pub scope_logits: Option<Tensor>,
}

impl HeadOutput {
    /// The outputs in fp32 (from an autocast region's half precision), for the losses.
    pub fn to_float(self) -> HeadOutput {
        let float = |t: Tensor| t.to_kind(tch::Kind::Float);
        HeadOutput {
            class_logits: float(self.class_logits),
            box_logits: float(self.box_logits),
            level_sizes: self.level_sizes,
            scope_logits: self.scope_logits.map(float),
        }
    }
}

/// The whole detector.
#[derive(Debug)]
pub struct DamoYolo {
    pub config: ModelConfig,
    pub fused: bool,
    backbone: Backbone,
    neck: Neck,
    class_convs: Vec<nn::Conv2D>,
    box_convs: Vec<nn::Conv2D>,
    scales: Vec<Tensor>,
    scope: Option<nn::Linear>,
}

impl DamoYolo {
    /// Builds the model under `p` (training form, or `fused` for inference).
    pub fn new(p: &nn::Path, config: &ModelConfig, fused: bool) -> Self {
        let backbone = Backbone::new(&(p / "backbone"), config, fused);
        let neck = Neck::new(&(p / "neck"), config, fused);
        let head = p / "head";
        let bins = 4 * (config.reg_max + 1);
        // The reference's head init: N(0, 0.01) weights; class bias for a 1 % prior, so the
        // first steps are not swamped by the negatives' focal loss.
        let prior_bias = -((1.0f64 - 0.01) / 0.01).ln();
        let normal = nn::Init::Randn { mean: 0.0, stdev: 0.01 };
        let class_conv = nn::ConvConfig {
            padding: 1,
            ws_init: normal,
            bs_init: nn::Init::Const(prior_bias),
            ..Default::default()
        };
        let box_conv = nn::ConvConfig {
            padding: 1,
            ws_init: normal,
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let outs = NECK_OUT.map(|c| config.channels(c));
        let class_convs = outs
            .iter()
            .enumerate()
            .map(|(i, &c)| crate::layers::conv2d(&(&head / "gfl_cls" / i), c, config.num_classes, 3, class_conv))
            .collect();
        let box_convs = outs
            .iter()
            .enumerate()
            .map(|(i, &c)| crate::layers::conv2d(&(&head / "gfl_reg" / i), c, bins, 3, box_conv))
            .collect();
        let scales = (0..3)
            .map(|i| (&head / "scales" / i).var("scale", &[1], nn::Init::Const(1.0)))
            .collect();
        // The scope head starts at "in scope" (bias 2: 0.88), so a new head on a trained
        // localiser leaves its scores near where they were until it has learned.
        let scope = config.scope_head.then(|| {
            let linear = nn::LinearConfig {
                ws_init: normal,
                bs_init: Some(nn::Init::Const(2.0)),
                bias: true,
            };
            nn::linear(&head / "scope", outs.iter().sum(), 1, linear)
        });
        DamoYolo {
            config: config.clone(),
            fused,
            backbone,
            neck,
            class_convs,
            box_convs,
            scales,
            scope,
        }
    }

    /// Copies the re-parameterised (BatchNorm- and branch-folded) weights into `target`, a
    /// fused model of the same config.
    pub fn fold_into(&self, target: &mut DamoYolo) {
        assert!(
            !self.fused && target.fused,
            "fold from a training model into a fused one"
        );
        self.backbone.fold_into(&mut target.backbone);
        self.neck.fold_into(&mut target.neck);
        tch::no_grad(|| {
            for (a, b) in self.class_convs.iter().zip(target.class_convs.iter_mut()) {
                b.ws.copy_(&a.ws);
                b.bs.as_mut().expect("bias").copy_(a.bs.as_ref().expect("bias"));
            }
            for (a, b) in self.box_convs.iter().zip(target.box_convs.iter_mut()) {
                b.ws.copy_(&a.ws);
                b.bs.as_mut().expect("bias").copy_(a.bs.as_ref().expect("bias"));
            }
            for (a, b) in self.scales.iter().zip(target.scales.iter_mut()) {
                b.copy_(a);
            }
            if let (Some(a), Some(b)) = (&self.scope, &mut target.scope) {
                b.ws.copy_(&a.ws);
                b.bs.as_mut().expect("bias").copy_(a.bs.as_ref().expect("bias"));
            }
        });
    }

    /// The three neck outputs (strides 8, 16, 32).
    ///
    /// # Shapes
    /// `images`: `[B, in_channels, H, W]` with H and W multiples of 32.
    pub fn features(&self, images: &Tensor, train: bool) -> Vec<Tensor> {
        self.neck.forward_t(&self.backbone.forward_t(images, train), train)
    }

    /// Head outputs for a batch.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> HeadOutput {
        let features = self.features(images, train);
        let batch = images.size()[0];
        let bins = self.config.reg_max + 1;
        let mut classes = Vec::new();
        let mut boxes = Vec::new();
        let mut level_sizes = Vec::new();
        for (level, x) in features.iter().enumerate() {
            let (h, w) = (x.size()[2], x.size()[3]);
            level_sizes.push((h, w));
            let c = x.apply(&self.class_convs[level]); // [B, C, h, w]
            classes.push(c.flatten(2, 3).permute([0, 2, 1])); // [B, h·w, C]
            let b = x.apply(&self.box_convs[level]) * &self.scales[level]; // [B, 4·bins, h, w]
            boxes.push(b.flatten(2, 3).permute([0, 2, 1]).reshape([batch, h * w, 4, bins]));
        }
        let scope_logits = self.scope.as_ref().map(|head| {
            let pooled: Vec<Tensor> = features
                .iter()
                .map(|x| x.mean_dim([2i64, 3].as_slice(), false, None))
                .collect();
            Tensor::cat(&pooled, 1).apply(head).squeeze_dim(1)
        });
        HeadOutput {
            class_logits: Tensor::cat(&classes, 1),
            box_logits: Tensor::cat(&boxes, 1),
            level_sizes,
            scope_logits,
        }
    }
}
