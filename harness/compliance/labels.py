"""What gives a value its labels: names, path strings and calls the data-flow pass recognises.

VAL (validation tokens), TRAIN (training tokens) and TGT (the token being scored) come from names such
as val_tokens, train_loader, targets; from path strings such as "fineweb_val_*.bin"; and from calls
(loss targets, what a log() picks; see flow.py). Metadata calls (numel, size, len, nonzero) drop
content labels; random generators start clean. The call and method tables below say which calls read
files, write artifacts, update caches, register hooks, load native code.
"""

from __future__ import annotations

import ast
import re

from harness.compliance.events import TRAIN, VAL, is_iter

_DATA_WORDS = r"(?:tokens?|toks|data|files?|ids|set|seqs?|stream|docs?|shards?|loader|batch(?:es)?|pattern|paths?|inputs?|targets?|chunks?|x|y|dataset)"
VAL_NAME = re.compile(rf"^(?:all_)?(?:val|valid|validation)(?:_{_DATA_WORDS})?$|_val_{_DATA_WORDS}$|^val_")
VAL_EXCLUDE = re.compile(r"^val_(?:loss|bpb|acc|every|batch_size|batch_tokens|interval|steps?|freq|frac|ppl|time|ms)\b")
TRAIN_NAME = re.compile(rf"^(?:train|training)_{_DATA_WORDS}$")
TARGET_NAME = re.compile(r"^(?:y|ys|yb|tgt|tgts|target|targets|target_ids|target_tokens|tgt_ids|y_batch|y_flat|labels?|next_tokens?|gold)$")
VAL_STRING = re.compile(r"fineweb_val|(?:^|[/_*])val(?:idation)?[_*][^/]*\.(?:bin|npy|pt)$")
TRAIN_STRING = re.compile(r"fineweb_train|(?:^|[/_*])train[_*][^/]*\.(?:bin|npy|pt)$")

SANITIZER_METHODS = frozenset({"numel", "size", "dim", "nelement", "nonzero", "argwhere", "count_nonzero",
                               "element_size", "stride", "is_contiguous", "data_ptr", "get_device", "__len__"})
SANITIZER_FUNCS = frozenset({"len", "isinstance", "type", "id", "hasattr", "callable", "print"})
METADATA_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn", "names"})
RANDOM_FUNCS = frozenset({"randint", "randn", "rand", "randperm", "rand_like", "randn_like", "randint_like",
                          "normal", "uniform", "bernoulli", "multinomial", "integers", "random", "choice"})
LOSS_FUNCS = frozenset({"cross_entropy", "nll_loss"})
LOG_FUNCS = frozenset({"log", "log2", "log10"})
FACTORY_FUNCS = frozenset({"zeros", "ones", "empty", "full", "randn", "rand", "zeros_like", "ones_like",
                           "empty_like", "full_like", "tensor", "randn_like"})
READ_FUNCS = frozenset({"open", "io.open", "builtins.open", "numpy.memmap", "numpy.fromfile", "numpy.load",
                        "torch.load", "np.memmap", "np.fromfile", "np.load"})
READ_METHODS = frozenset({"read_bytes", "read_text"})
WRITE_FUNCS = frozenset({"torch.save", "numpy.save", "numpy.savez", "numpy.savez_compressed", "np.save", "np.savez"})
ACCUMULATE_METHODS = frozenset({"add_", "append", "extend", "sub_"})
MUTATE_METHODS = frozenset({"add_", "append", "extend", "insert", "update", "copy_", "fill_", "sub_", "mul_",
                            "index_add_", "scatter_add_", "scatter_", "index_put_", "index_copy_", "put_", "setdefault", "add"})
CACHE_WRITE_METHODS = {"index_add_": 1, "scatter_add_": 1, "scatter_": 1, "index_copy_": 1, "index_put_": 0, "put_": 0,
                       "setdefault": 0, "index_fill_": 1}
CACHE_READ_METHODS = {"get": 0, "index_select": 1}
HOOK_METHODS = frozenset({"register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook"})
CALIB_NAME = re.compile(r"hessian|calib", re.I)
MODEL_METHODS = re.compile(r"^(?:forward\w*|__call__|logits|get_logits|predict|score)$")
NATIVE_LOADERS = frozenset({"ctypes.CDLL", "ctypes.cdll.LoadLibrary", "ctypes.PyDLL", "ctypes.WinDLL",
                            "torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline", "cffi.FFI.dlopen"})
# What a reported total is called: an accumulation into one of these is a score (x += h in a forward is not).
SCORE_SINK = re.compile(r"loss|nll|bpb|(?:^|_)bits|bytes?(?:_|$)|(?:^|_)scores?(?:_|$)|entropy|logp|log_prob|ppl|perplex|xent|neg_log", re.I)
REPORT_CALL = re.compile(r"^(?:print|log\w*|info|warning)$")


def name_labels(name: str) -> frozenset:
    lower = name.lower()
    labels = set()
    if VAL_NAME.search(lower) and not VAL_EXCLUDE.match(lower):
        labels.add(VAL)
    if TRAIN_NAME.search(lower):
        labels.add(TRAIN)
    return frozenset(labels)


def string_labels(text: str) -> frozenset:
    labels = set()
    if VAL_STRING.search(text):
        labels.add(VAL)
    if TRAIN_STRING.search(text):
        labels.add(TRAIN)
    return frozenset(labels)


def only_iter(labels) -> frozenset:
    return frozenset(label for label in labels if is_iter(label))


def static_labels(node: ast.expr) -> frozenset:
    labels = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            labels |= string_labels(sub.value)
        elif isinstance(sub, ast.Name):
            labels |= name_labels(sub.id)
        elif isinstance(sub, ast.Attribute):
            labels |= name_labels(sub.attr)
    return frozenset(labels)
