"""DAMO-YOLO-T (TinyNAS-L20 + GiraffeNeckV2 + ZeroHead outputs) in plain PyTorch, written
beside hipfrac's Rust definition (crates/model/src/damo.rs) for side-by-side timing of a
train step. It checks its own parameter count (8,567,339 for 1 channel and 4 classes, as the
official model) so both sides time the same network.

Usage: python damo_t.py --size 512 --batch 4 --steps 10 --threads 2 [--device cuda] [--channels-last] [--bf16] [--infer]
(--infer: the fused network's forward pass in eval mode instead, for bench/infer.sh)
Prints one JSON line: {"framework": "pytorch", "images_per_s": ...}.
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, stride=1, act="relu"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        y = self.bn(self.conv(x))
        return F.relu(y) if self.act == "relu" else F.silu(y) if self.act == "silu" else y


class RepConv(nn.Module):
    def __init__(self, cin, cout, stride=1, act="relu"):
        super().__init__()
        self.dense = ConvBn(cin, cout, 3, stride, None)
        self.one = ConvBn(cin, cout, 1, stride, None)
        self.act = act

    def forward(self, x):
        fused = getattr(self, "fused", None)
        y = fused(x) if fused is not None else self.dense(x) + self.one(x)
        return F.relu(y) if self.act == "relu" else y


class ResBlock(nn.Module):
    def __init__(self, cin, cout, btn, stride):
        super().__init__()
        self.conv1 = ConvBn(cin, btn, 1, 1, None)
        self.conv2 = RepConv(btn, cout, stride, None)
        self.proj = ConvBn(cin, cout, 1, 1, None) if (cin != cout and stride != 2) else None
        self.stride = stride

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        if self.stride != 2:
            y = y + (self.proj(x) if self.proj is not None else x)
        return F.relu(y)


class Spp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvBn(c, c // 2, 1, act="silu")
        self.conv2 = ConvBn(c // 2 * 4, c, 1, act="silu")

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [F.max_pool2d(x, k, 1, k // 2) for k in (5, 9, 13)], 1))


class Csp(nn.Module):
    def __init__(self, cin, cout, n=3):
        super().__init__()
        first = cout // 2
        mid = cout - first
        self.conv1 = ConvBn(cin, first, 1)
        self.conv2 = ConvBn(cin, mid, 1)
        self.reps = nn.ModuleList([RepConv(mid, mid) for _ in range(n)])
        self.convs = nn.ModuleList([ConvBn(mid, mid, 3) for _ in range(n)])
        self.conv3 = ConvBn(mid * n + first, cout, 1)

    def forward(self, x):
        outs = [self.conv1(x)]
        y = self.conv2(x)
        for rep, conv in zip(self.reps, self.convs):
            y = y + conv(rep(y))
            outs.append(y)
        return self.conv3(torch.cat(outs, 1))


class DamoT(nn.Module):
    def __init__(self, cin=1, classes=4, reg_max=16, width=1.0, depth=1.0):
        super().__init__()
        # The same multipliers as hipfrac's ModelConfig (width 0.25, depth 0.34 = `nano`).
        ch = lambda c: c if width == 1.0 else max(round(c * width / 8), 1) * 8
        nb = lambda n: max(round(n * depth), 1)
        self.stem = ConvBn(cin * 4, ch(24), 3)
        stages = [(ch(o), ch(b), s, nb(n)) for o, b, s, n in [(64, 24, 2, 2), (96, 64, 2, 2), (192, 96, 2, 2), (192, 152, 1, 2), (384, 192, 2, 1)]]
        self.stages = nn.ModuleList()
        c = ch(24)
        for i, (out, btn, s, n) in enumerate(stages):
            blocks = [ResBlock(c if b == 0 else out, out, btn, s if b == 0 else 1) for b in range(n)]
            if i == 4:
                blocks.insert(1, Spp(out))
            self.stages.append(nn.Sequential(*blocks))
            c = out
        i0, i1, i2 = ch(96), ch(192), ch(384)
        o0, o1, o2 = ch(64), ch(128), ch(256)
        n = nb(3)
        self.bu13 = ConvBn(i1, i1, 3, 2); self.m3 = Csp(i1 + i2, i2, n)
        self.bu24 = ConvBn(i0, i0, 3, 2); self.m4 = Csp(i0 + i1 + i2, i1, n)
        self.m5 = Csp(i1 + i0, o0, n)
        self.bu57 = ConvBn(o0, o0, 3, 2); self.m7 = Csp(o0 + i1, o1, n)
        self.bu46 = ConvBn(i1, i1, 3, 2); self.bu76 = ConvBn(o1, o1, 3, 2); self.m6 = Csp(i1 + o1 + i2, o2, n)
        self.cls = nn.ModuleList([nn.Conv2d(c, classes, 3, padding=1) for c in (o0, o1, o2)])
        self.reg = nn.ModuleList([nn.Conv2d(c, 4 * (reg_max + 1), 3, padding=1) for c in (o0, o1, o2)])
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(3)])

    def forward(self, x):
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
        y = self.stem(x)
        feats = []
        for i, stage in enumerate(self.stages):
            y = stage(y)
            if i in (1, 3, 4):
                feats.append(y)
        x2, x1, x0 = feats
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        x3 = self.m3(torch.cat([x0, self.bu13(x1)], 1))
        x4 = self.m4(torch.cat([x1, self.bu24(x2), up(x3)], 1))
        x5 = self.m5(torch.cat([x2, up(x4)], 1))
        x7 = self.m7(torch.cat([x4, self.bu57(x5)], 1))
        x6 = self.m6(torch.cat([x3, self.bu46(x4), self.bu76(x7)], 1))
        return [(c(f), r(f) * s) for f, c, r, s in zip((x5, x7, x6), self.cls, self.reg, self.scales)]


def fold(conv, bn):
    """conv then batch norm (eval) as one convolution with a bias."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True).to(conv.weight.device)
    out.weight.data = conv.weight * scale.reshape(-1, 1, 1, 1)
    out.bias.data = bn.bias - bn.running_mean * scale
    return out


def fuse(model):
    """Inference form, as hipfrac's folded network: every conv + BN one conv, every RepConv's
    3x3 and 1x1 branches one 3x3 conv."""
    for m in model.modules():
        if isinstance(m, ConvBn) and not isinstance(m.bn, nn.Identity):
            m.conv, m.bn = fold(m.conv, m.bn), nn.Identity()
    for m in model.modules():
        if isinstance(m, RepConv):
            d, o = m.dense.conv, m.one.conv
            conv = nn.Conv2d(d.in_channels, d.out_channels, 3, d.stride, 1, bias=True).to(d.weight.device)
            conv.weight.data = d.weight + F.pad(o.weight, [1, 1, 1, 1])
            conv.bias.data = d.bias + o.bias
            m.fused = conv
    return model


def infer(a, model, fmt):
    """--infer: the fused network's forward pass in eval mode, no autograd."""
    model.eval()
    x = torch.randn(a.batch, 1, a.size, a.size, device=a.device).to(memory_format=fmt)
    with torch.inference_mode():
        # BN with running statistics of random data, so the check below means something.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        before = model(x)
        fuse(model)
        model = model.to(memory_format=fmt)
        after = model(x)
        for (c0, r0), (c1, r1) in zip(before, after):
            assert torch.allclose(c0, c1, atol=1e-3, rtol=1e-3) and torch.allclose(r0, r1, atol=1e-3, rtol=1e-3)
        for _ in range(2):
            model(x)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(a.steps):
            with torch.autocast(a.device if a.device != "cpu" else "cpu", dtype=torch.bfloat16, enabled=a.bf16):
                model(x)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / a.steps
    print(json.dumps({"framework": "pytorch", "what": "network", "size": a.size, "batch": a.batch, "channels_last": a.channels_last, "bf16": a.bf16,
                      "seconds_per_batch": dt, "images_per_s": a.batch / dt}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--nano", action="store_true", help="hipfrac's nano preset (width 0.25, depth 0.34)")
    p.add_argument("--infer", action="store_true", help="time the fused network's forward pass (eval, no autograd) instead of a train step")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = (DamoT(width=0.25, depth=0.34) if a.nano else DamoT()).to(a.device)
    count = sum(t.numel() for t in model.parameters())
    assert a.nano or count == 8_567_339, count
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    if a.infer:
        return infer(a, model, fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(a.batch, 1, a.size, a.size, device=a.device).to(memory_format=fmt)

    def step():
        with torch.autocast(a.device if a.device != "cpu" else "cpu", dtype=torch.bfloat16, enabled=a.bf16):
            outs = model(x)
            # The same stand-in objective as the Rust bench: mean squares of all class and
            # all box outputs.
            cls = torch.cat([c.flatten(2) for c, _ in outs], 2).float()
            reg = torch.cat([r.flatten(2) for _, r in outs], 2).float()
            loss = (cls ** 2).mean() + (reg ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.steps
    print(json.dumps({"framework": "pytorch", "size": a.size, "batch": a.batch, "channels_last": a.channels_last, "bf16": a.bf16,
                      "seconds_per_step": dt, "images_per_s": a.batch / dt, "parameters": count}))


if __name__ == "__main__":
    main()
