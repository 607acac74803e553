"""Sequence models: LSTM, GRU, nn.TransformerEncoder, a hand-written (minGPT-style)
transformer, a tied-embedding language model and a small ViT."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .common import BATCH, ZooCase, randomize_norms

VOCAB = 50
SEQ_LEN = 8


def _tokens(vocab: int = VOCAB, seq_len: int = SEQ_LEN) -> Tensor:
    return torch.randint(0, vocab, (BATCH, seq_len), dtype=torch.int64)


# --------------------------------------------------------------------------- RNNs


class LSTMClassifier(nn.Module):
    def __init__(self, vocab: int = VOCAB, embed_dim: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, 5)

    def forward(self, tokens: Tensor) -> Tensor:
        emb = self.embedding(tokens)
        _, (h_n, _) = self.lstm(emb)
        return self.fc(h_n[-1])


def lstm() -> ZooCase:
    torch.manual_seed(0)
    model = LSTMClassifier()
    return ZooCase(model.eval(), _tokens(), "seq")


class GRUClassifier(nn.Module):
    def __init__(self, vocab: int = VOCAB, embed_dim: int = 16, hidden: int = 24) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden, num_layers=1, batch_first=True)
        self.fc = nn.Linear(hidden, 5)

    def forward(self, tokens: Tensor) -> Tensor:
        output, _ = self.gru(self.embedding(tokens))
        return self.fc(output[:, -1, :])


def gru() -> ZooCase:
    torch.manual_seed(0)
    model = GRUClassifier()
    return ZooCase(model.eval(), _tokens(), "seq")


# --------------------------------------------------------------------------- nn.TransformerEncoder


class TransformerClassifier(nn.Module):
    def __init__(
        self, vocab: int = VOCAB, d_model: int = 32, nhead: int = 4, num_classes: int = 5
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos_embed = nn.Parameter(torch.zeros(1, SEQ_LEN, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos_embed[:, : tokens.size(1)]
        x = self.encoder(x)
        return self.head(x.mean(dim=1))


def transformer_mha() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(TransformerClassifier())
    return ZooCase(model.eval(), _tokens(), "transformer")


# --------------------------------------------------------------------------- hand-written attention


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        assert dim % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        att = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        att = att.softmax(dim=-1)
        y = att @ v
        y = y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)
        return self.o(y)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class HandwrittenTransformer(nn.Module):
    def __init__(
        self, vocab: int = VOCAB, dim: int = 32, num_heads: int = 4, depth: int = 2
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, SEQ_LEN, dim))
        self.blocks = nn.ModuleList([Block(dim, num_heads, 64) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 5)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return self.head(x.mean(dim=1))


def transformer_handwritten() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(HandwrittenTransformer())
    return ZooCase(model.eval(), _tokens(), "transformer")


# --------------------------------------------------------------------------- tied embedding LM


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 64, dim: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.ln1 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight  # weight tying

    def forward(self, tokens: Tensor) -> Tensor:
        h = self.embed(tokens)
        h = h + self.fc2(self.act(self.fc1(self.ln1(h))))
        return self.head(self.ln_f(h))


def tied_embedding() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(TinyLM())
    return ZooCase(model.eval(), _tokens(vocab=64), "seq")


# --------------------------------------------------------------------------- ViT


class ViTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    def __init__(
        self,
        img_size: int = 16,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 32,
        depth: int = 2,
        num_heads: int = 4,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*[ViTBlock(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # B, N, D
        cls_token = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_token, x), dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])


def vit() -> ZooCase:
    torch.manual_seed(0)
    model = randomize_norms(VisionTransformer())
    return ZooCase(model.eval(), torch.randn(BATCH, 3, 16, 16), "transformer")


SEQ_ZOO = {
    "lstm": lstm,
    "gru": gru,
    "transformer_mha": transformer_mha,
    "transformer_handwritten": transformer_handwritten,
    "tied_embedding": tied_embedding,
    "vit": vit,
}
