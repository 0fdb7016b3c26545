"""Decode self-extracting scripts statically: `exec(lzma.decompress(base64.b85decode("...")))` and kin.

Records shrink their counted code by shipping `train_gpt.py` as a compressed, encoded payload that
exec()s itself. The scanner must read what actually runs, so it evaluates the payload expression with a
tiny interpreter that knows only constants, string concatenation, names bound to constants at module
level, and the standard decoders (base64 family, lzma, zlib, gzip, bz2; not brotli, which has no
output cap), bytes.decode/str.encode, bytes.fromhex, codecs.decode). Decoding is not executing: nothing of the
submission runs, and every decompression stops at MAX_DECODED_BYTES.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import lzma
import zlib
from dataclasses import dataclass

from harness.compliance.names import canonical, import_aliases

# Harness policy: the largest decoded source the scanner accepts (real payloads are ~100 kB).
MAX_DECODED_BYTES = 32 * 2**20

_BASE64 = {
    "base64.b64decode": base64.b64decode, "base64.b85decode": base64.b85decode,
    "base64.a85decode": base64.a85decode, "base64.b32decode": base64.b32decode,
    "base64.b16decode": base64.b16decode, "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.standard_b64decode": base64.standard_b64decode, "base64.decodebytes": base64.decodebytes,
    "binascii.a2b_base64": binascii.a2b_base64, "binascii.unhexlify": binascii.unhexlify,
}
_DECOMPRESS = ("lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress", "brotli.decompress")
_LZMA_CONSTANTS = {name: getattr(lzma, name) for name in dir(lzma) if name.isupper()}


class NotStatic(Exception):
    """The expression is not a payload the scanner can decode without running the submission."""


@dataclass
class Decoded:
    source: str  # the decoded Python text
    layers: tuple[str, ...]  # decoders applied, outermost call first, e.g. ("lzma.decompress", "base64.b85decode")


def module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Names bound once at module level to a literal or to an expression of literals (payload holders)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound.setdefault(node.targets[0].id, []).append(node.value)
    return {name: values[0] for name, values in bound.items() if len(values) == 1}


class StaticDecoder:
    def __init__(self, tree: ast.Module, aliases: dict[str, str] | None = None) -> None:
        self.aliases = aliases if aliases is not None else import_aliases(tree)
        self.constants = module_constants(tree)
        self.layers: list[str] = []

    def decode_exec_argument(self, node: ast.expr) -> Decoded:
        self.layers = []
        value = self.value(node, depth=0)
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as error:
                raise NotStatic("the decoded payload is not UTF-8 text") from error
        if not isinstance(value, str):
            raise NotStatic("the payload is not text")
        return Decoded(source=value, layers=tuple(self.layers))

    def value(self, node: ast.expr, depth: int):
        if depth > 40:
            raise NotStatic("payload expression nested too deeply")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes, int)):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.value(self.constants.pop(node.id), depth + 1)  # pop: a name never expands twice
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if type(left) is not type(right) or not isinstance(left, (str, bytes)):
                raise NotStatic("payload concatenates values of different types")
            self._check_size(len(left) + len(right))
            return left + right
        if isinstance(node, ast.Attribute):
            name = canonical(node, self.aliases)
            if name and name.startswith("lzma.") and name[5:] in _LZMA_CONSTANTS:
                return _LZMA_CONSTANTS[name[5:]]
            raise NotStatic(f"cannot evaluate {name or 'an attribute'} statically")
        if isinstance(node, ast.List):
            return [self.value(item, depth + 1) for item in node.elts]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise NotStatic("payload uses ** in a dict")
            return {self.value(k, depth + 1): self.value(v, depth + 1) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise NotStatic(f"cannot evaluate {type(node).__name__} statically")

    def call(self, node: ast.Call, depth: int):
        kwargs = {kw.arg: self.value(kw.value, depth + 1) for kw in node.keywords if kw.arg}
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("decode", "encode") and not _is_module(node.func.value, self.aliases):
            data = self.value(node.func.value, depth + 1)
            encoding = self.value(node.args[0], depth + 1) if node.args else kwargs.get("encoding", "utf-8")
            if node.func.attr == "decode" and isinstance(data, bytes):
                return data.decode(encoding)
            if node.func.attr == "encode" and isinstance(data, str):
                return data.encode(encoding)
            raise NotStatic(f".{node.func.attr}() on a value of the wrong type")
        name = canonical(node.func, self.aliases)
        args = [self.value(arg, depth + 1) for arg in node.args]
        if name in _BASE64:
            self.layers.append(name)
            try:
                return _BASE64[name](*args)
            except (ValueError, TypeError, binascii.Error) as error:
                raise NotStatic(f"{name} failed: {error}") from error
        if name in _DECOMPRESS:
            self.layers.append(name)
            return _decompress(name, args, kwargs)
        if name == "bytes.fromhex" and len(args) == 1 and isinstance(args[0], str):
            self.layers.append(name)
            return bytes.fromhex(args[0])
        if name == "codecs.decode" and args:
            self.layers.append(name)
            try:
                return codecs.decode(*args[:2])
            except (LookupError, ValueError, TypeError) as error:
                raise NotStatic(f"codecs.decode failed: {error}") from error
        raise NotStatic(f"cannot evaluate a call to {name or 'an expression'} statically")

    @staticmethod
    def _check_size(size: int) -> None:
        if size > MAX_DECODED_BYTES:
            raise NotStatic(f"payload exceeds the {MAX_DECODED_BYTES:,}-byte decoding limit")


def _is_module(node: ast.expr, aliases: dict[str, str]) -> bool:
    return isinstance(node, ast.Name) and node.id in aliases


def _decompress(name: str, args: list, kwargs: dict) -> bytes:
    if not args or not isinstance(args[0], bytes):
        raise NotStatic(f"{name} of a non-bytes value")
    data = args[0]
    try:
        if name == "lzma.decompress":
            decompressor = lzma.LZMADecompressor(format=kwargs.get("format", args[1] if len(args) > 1 else lzma.FORMAT_AUTO),
                                                 filters=kwargs.get("filters"))
            out = decompressor.decompress(data, max_length=MAX_DECODED_BYTES + 1)
        elif name in ("zlib.decompress", "gzip.decompress"):
            wbits = 31 if name == "gzip.decompress" else kwargs.get("wbits", args[1] if len(args) > 1 else zlib.MAX_WBITS)
            out = zlib.decompressobj(wbits).decompress(data, MAX_DECODED_BYTES + 1)
        elif name == "bz2.decompress":
            out = bz2.BZ2Decompressor().decompress(data, max_length=MAX_DECODED_BYTES + 1)
        else:
            out = _brotli(data)
    except (lzma.LZMAError, zlib.error, OSError, ValueError, TypeError) as error:
        raise NotStatic(f"{name} failed: {error}") from error
    if len(out) > MAX_DECODED_BYTES:
        raise NotStatic(f"payload exceeds the {MAX_DECODED_BYTES:,}-byte decoding limit")
    return out


def _brotli(data: bytes) -> bytes:
    # brotli is no dependency of the harness, and its Python API has no output cap to stop a bomb with.
    raise NotStatic("payload is brotli-compressed; the scanner does not decode brotli (no output cap)")


def decode_payload(tree: ast.Module, node: ast.expr, aliases: dict[str, str] | None = None) -> Decoded:
    """Decode the argument of an exec() call, or raise NotStatic saying why it cannot be done."""
    return StaticDecoder(tree, aliases).decode_exec_argument(node)
