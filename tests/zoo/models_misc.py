"""MLPs, 1-D/3-D convs, U-Net, channel routing with split/chunk, multi-input and
multi-output models."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .common import BATCH, ZooCase, randomize_norms

# --------------------------------------------------------------------------- MLP


class MLP(nn.Module):
    def __init__(self, in_features: int = 16, hidden: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def mlp() -> ZooCase:
    torch.manual_seed(0)
    model = MLP()
    return ZooCase(model.eval(), torch.randn(BATCH, 16), "mlp")


# --------------------------------------------------------------------------- Conv1d / Conv3d


class Conv1dNet(nn.Module):
    def __init__(self, in_channels: int = 4, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, 16, kernel_size=3, padding=1),
            nn.BatchNorm1d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, kernel_size=3, padding=1),
            nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.pool(x).squeeze(-1)
        return self.fc(x)


def conv1d() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(Conv1dNet())
    return ZooCase(model.eval(), torch.randn(BATCH, 4, 16), "cnn")


class Conv3dNet(nn.Module):
    def __init__(self, in_channels: int = 2, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, 8, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(8)
        self.pool1 = nn.MaxPool3d(2)
        self.conv2 = nn.Conv3d(8, 16, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(16)
        self.pool2 = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(self.pool2(x), 1)
        return self.fc(x)


def conv3d() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(Conv3dNet())
    return ZooCase(model.eval(), torch.randn(BATCH, 2, 8, 8, 8), "cnn")


# --------------------------------------------------------------------------- U-Net


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels // 2 + out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 8) -> None:
        super().__init__()
        self.inc = DoubleConv(in_channels, base)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(base, base * 2))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(base * 2, base * 4))  # bottleneck
        self.up1 = Up(base * 4, base * 2)
        self.up2 = Up(base * 2, base)
        self.outc = nn.Conv2d(base, num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)


def unet() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(UNet())
    return ZooCase(model.eval(), torch.randn(BATCH, 3, 16, 16), "cnn")


# --------------------------------------------------------------------------- split / chunk


def _conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ChunkSplitNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 32), nn.ReLU(inplace=True))
        self.narrow = _conv_bn(8, 8)
        self.wide = _conv_bn(24, 24)
        self.left = _conv_bn(16, 16)
        self.right = _conv_bn(16, 16)
        self.quarters = nn.ModuleList([nn.Conv2d(4, 8, 1) for _ in range(4)])
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        # uneven split into two branches, recombined by cat, plus a residual add
        a, b = torch.split(x, [8, 24], dim=1)
        x = torch.relu(torch.cat([self.narrow(a), self.wide(b)], dim=1) + x)
        # halves through separate branches, recombined by add
        left, right = torch.chunk(x, 2, dim=1)
        y = torch.relu(self.left(left) + self.right(right))
        # equal-size split (tensor method) into four parts, each projected, then summed
        parts = y.split(4, dim=1)
        z = self.quarters[0](parts[0])
        for i in range(1, len(self.quarters)):
            z = z + self.quarters[i](parts[i])
        return self.fc(z.mean(dim=(2, 3)))


def chunk_split() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(ChunkSplitNet())
    return ZooCase(model.eval(), torch.randn(BATCH, 3, 8, 8), "cnn")


# --------------------------------------------------------------------------- multi-input / output


class MultiTaskNet(nn.Module):
    def __init__(self, aux_features: int = 4, num_classes: int = 5, reg_dim: int = 2) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 24, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(24),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.neck = nn.Linear(24 + aux_features, 32)
        self.cls_head = nn.Linear(32, num_classes)
        self.reg_head = nn.Linear(32, reg_dim)

    def forward(self, image: Tensor, aux: Tensor) -> dict[str, Tensor]:
        feats = torch.flatten(self.pool(self.trunk(image)), 1)
        h = torch.relu(self.neck(torch.cat([feats, aux], dim=1)))
        return {"cls": self.cls_head(h), "reg": self.reg_head(h)}


def multitask_dict() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(MultiTaskNet())
    inputs = (torch.randn(BATCH, 3, 8, 8), torch.randn(BATCH, 4))
    return ZooCase(model.eval(), inputs, "cnn")


class ImageMetaMLP(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int] = (3, 8, 8), meta_dim: int = 6) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_proj = nn.Linear(c * h * w, 32)
        self.meta_proj = nn.Linear(meta_dim, 16)
        self.fc = nn.Linear(32 + 16, 32)
        self.out = nn.Linear(32, 3)

    def forward(self, image: Tensor, meta: Tensor) -> Tensor:
        img = self.image_proj(image.flatten(1))
        m = self.meta_proj(meta)
        h = torch.relu(torch.cat([img, m], dim=-1))
        h = torch.relu(self.fc(h))
        return self.out(h)


def mlp_dict_input() -> ZooCase:
    torch.manual_seed(0)
    model = ImageMetaMLP()
    inputs = {"image": torch.randn(BATCH, 3, 8, 8), "meta": torch.randn(BATCH, 6)}
    return ZooCase(model.eval(), inputs, "mlp")


MISC_ZOO = {
    "mlp": mlp,
    "conv1d": conv1d,
    "conv3d": conv3d,
    "unet": unet,
    "chunk_split": chunk_split,
    "multitask_dict": multitask_dict,
    "mlp_dict_input": mlp_dict_input,
}
