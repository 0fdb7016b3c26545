"""Detectors about escaping the scanner or the rules: network, unreadable dynamic code, native code,
files outside the submission, and environment probes. They read each unit's AST with its imports
resolved (names.py), so `import urllib.request as u; u.urlopen(...)` reads as urllib.request.urlopen.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from harness.compliance import events as ev
from harness.compliance.detectors import FLAG, LEGAL, NOTE, REVIEW, Context, Hit, detector
from harness.compliance.events import VAL
from harness.compliance.names import canonical, last_name
from harness.compliance.sources import Unit

NETWORK_MODULES = ("socket", "urllib", "urllib3", "requests", "httpx", "http.client", "aiohttp", "ftplib", "smtplib",
                   "huggingface_hub", "torch.hub", "wget", "boto3", "botocore", "paramiko", "websocket", "websockets",
                   "telnetlib", "xmlrpc", "pycurl", "gdown", "fsspec", "s3fs", "gcsfs", "kagglehub", "modelscope")
NETWORK_CALLS = ("datasets.load_dataset", "transformers.AutoModel.from_pretrained", "torchvision.datasets")
NOT_NETWORK = frozenset({"socket.gethostname", "socket.getfqdn"})
NETWORK_COMMANDS = re.compile(r"^(?:curl|wget|pip|pip3|uv|conda|ssh|scp|rsync|nc|ncat|netcat|telnet|ftp|aws|gsutil|gcloud|az|"
                              r"huggingface-cli|hf|git-lfs|aria2c)$")
GIT_NETWORK = frozenset({"clone", "fetch", "pull", "ls-remote", "submodule", "push"})
COMPILERS = re.compile(r"^(?:g\+\+|gcc|cc|c\+\+|clang|clang\+\+|nvcc|ninja|make|cmake|hipcc|icpx|rustc|cargo|go)(?:-[\d.]+)?$")
HARMLESS_COMMANDS = re.compile(r"^(?:nvidia-smi|nproc|lscpu|free|df|uname|date|hostname|echo|true|ls|cat)$")
SUBPROCESS_CALLS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                              "subprocess.Popen", "subprocess.getoutput", "subprocess.getstatusoutput", "os.system",
                              "os.popen", "os.execv", "os.execvp", "os.execl", "os.execlp", "os.spawnv", "os.spawnl",
                              "pty.spawn", "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell"})
DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "builtins.exec", "builtins.eval", "builtins.compile",
                           "__import__", "builtins.__import__", "marshal.loads", "types.FunctionType", "types.CodeType",
                           "runpy.run_path", "runpy.run_module", "execfile"})
NATIVE_CALLS = frozenset({"ctypes.CDLL", "ctypes.cdll.LoadLibrary", "ctypes.PyDLL", "ctypes.WinDLL", "ctypes.util.find_library",
                          "torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline", "torch.ops.load_library",
                          "cffi.FFI", "cupy.RawKernel", "cupy.RawModule", "numba.cuda.jit"})
FILE_CALLS = frozenset({"open", "io.open", "builtins.open", "numpy.load", "numpy.memmap", "numpy.fromfile", "torch.load",
                        "os.listdir", "os.scandir", "glob.glob", "glob.iglob", "pathlib.Path", "os.open", "np.load",
                        "np.memmap", "np.fromfile", "shutil.copy", "shutil.copyfile", "shutil.copytree"})
ALLOWED_ABSOLUTE = ("/tmp", "/dev/shm", "/dev/null", "/dev/zero", "/dev/urandom", "/proc/self", "/proc/meminfo",
                    "/proc/cpuinfo", "/sys/class", "/sys/devices")
DATA_PATH = re.compile(r"(?:^|/)(?:data|datasets?|tokenizers?)(?:/|$)|fineweb|\.model$")
ENV_READERS = frozenset({"os.environ.get", "os.getenv", "os.environ.setdefault", "os.environ.pop"})
PROBE_NAMES = re.compile(r"^(?:CI|GITHUB_\w+|GITLAB_\w+|BUILDKITE\w*|JENKINS\w*|HOSTNAME|HOST|USER|USERNAME|LOGNAME|HOME|"
                         r"SLURM_\w+|KUBERNETES_\w+|PGOLF\w*|HARNESS\w*|\w*_HARNESS\w*|\w*VERIF\w*|\w*JUDGE\w*|\w*GRADER\w*|"
                         r"\w*REVIEWER\w*|OFFICIAL\w*|SUBMISSION_CHECK\w*|SANDBOX\w*)$")
PROBE_CALLS = frozenset({"socket.gethostname", "socket.getfqdn", "platform.node", "platform.uname", "getpass.getuser",
                         "os.uname", "os.getlogin", "os.getuid"})
WHOLE_ENV = frozenset({"os.environ.copy", "os.environ.items", "os.environ.keys", "os.environ.values"})


@dataclass
class CallSite:
    unit: Unit
    node: ast.Call
    name: str  # canonical name ("" when the callee is not a dotted name)
    strings: dict  # names bound in the unit to a string constant or shutil.which("x"): name -> "x"


def _calls(ctx: Context) -> list[CallSite]:
    if "calls" not in ctx.cache:
        sites = []
        for unit in ctx.parsed_units():
            aliases = unit.aliases()
            strings = _string_names(unit, aliases)
            for node in unit.nodes():
                if isinstance(node, ast.Call):
                    sites.append(CallSite(unit, node, canonical(node.func, aliases) or "", strings))
        ctx.cache["calls"] = sites
    return ctx.cache["calls"]


def _string_names(unit: Unit, aliases: dict[str, str]) -> dict[str, str]:
    """Names assigned exactly once in the file, to a string or to shutil.which("program")."""
    bound: dict[str, list] = {}
    for node in unit.nodes():
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if (isinstance(value, ast.Call) and canonical(value.func, aliases) == "shutil.which" and value.args
                    and isinstance(value.args[0], ast.Constant)):
                value = value.args[0]
            bound.setdefault(node.targets[0].id, []).append(value.value if isinstance(value, ast.Constant) else None)
    return {name: values[0] for name, values in bound.items() if len(values) == 1 and isinstance(values[0], str)}


def _hit(ctx: Context, rule: str, outcome: str, kind: str, unit: Unit, node: ast.AST | None, reason: str) -> Hit:
    if outcome in (FLAG, REVIEW) and unit.role not in ("entry", "reached"):
        outcome = NOTE
        reason = f"{reason} (in {unit.relpath}, which the run does not reach)"
    line = getattr(node, "lineno", None)
    return Hit(rule=rule, outcome=outcome, kind=kind, unit=unit.label, line=line, col=getattr(node, "col_offset", None), reason=reason)


def _command(site: CallSite) -> list[str] | None:
    """The command a subprocess call runs, when its words are constants; None when computed."""
    node = site.node
    if not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Name) and first.id in site.strings:
        return site.strings[first.id].split()
    if isinstance(first, (ast.List, ast.Tuple)):
        words = []
        for element in first.elts:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                words.append(element.value)
            elif isinstance(element, ast.Name) and element.id in site.strings:
                words.append(site.strings[element.id])
            elif isinstance(element, ast.Attribute) and element.attr == "executable":
                words.append("python")
            else:
                words.append("<computed>")
        return words
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value.split()
    if isinstance(first, ast.JoinedStr):
        head = "".join(v.value for v in first.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        return head.split() or None
    return None


def _program(words: list[str]) -> str:
    """The program a command line runs, looking through `python -m X` and `sudo`/`env` prefixes."""
    words = [w for w in words if w not in ("sudo", "env", "exec", "nohup")]
    if not words:
        return ""
    program = PurePosixPath(words[0]).name
    if program.startswith("python") and len(words) > 2 and words[1] == "-m":
        return words[2]
    return program


def _is_network_name(name: str) -> bool:
    if name in NOT_NETWORK:
        return False
    return any(name == m or name.startswith(m + ".") for m in NETWORK_MODULES + NETWORK_CALLS)


@detector("network")
def network(ctx: Context) -> list[Hit]:
    hits = []
    for site in _calls(ctx):
        if _is_network_name(site.name):
            hits.append(_hit(ctx, "network", FLAG, "network_call", site.unit, site.node,
                             f"calls {site.name}, which reaches the network"))
        elif site.name in SUBPROCESS_CALLS:
            words = _command(site)
            program = _program(words) if words else ""
            if NETWORK_COMMANDS.match(program) or (program == "git" and len(words) > 1 and words[1] in GIT_NETWORK):
                hits.append(_hit(ctx, "network", FLAG, "network_command", site.unit, site.node,
                                 f"runs `{' '.join(words)}` through {site.name}, which reaches the network"))
    seen_modules = {(h.unit, h.line) for h in hits}
    for unit in ctx.parsed_units():
        for node in unit.nodes():
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if _is_network_name(name) and (unit.label, node.lineno) not in seen_modules and name != "socket":
                    hits.append(_hit(ctx, "network", REVIEW, "network_import", unit, node,
                                     f"imports {name}, a network client (no call to it was resolved)"))
    return _drop_imports_with_calls(hits)


def _drop_imports_with_calls(hits: list[Hit]) -> list[Hit]:
    """An import is only worth a review when no call through it was flagged in the same unit."""
    flagged_units = {h.unit for h in hits if h.kind != "network_import"}
    return [h for h in hits if h.kind != "network_import" or h.unit not in flagged_units]


@detector("dynamic_code")
def dynamic_code(ctx: Context) -> list[Hit]:
    hits = []
    for note in ctx.sources.notes:
        unit = ctx.unit(note.unit)
        if unit is None:
            continue
        node = _at(note.line, note.col)
        if note.kind in ("wrapper", "exec_file"):
            hits.append(_hit(ctx, "dynamic_code", LEGAL, note.kind, unit, node, note.message))
        elif note.kind in ("embedded_payload", "undecodable_payload"):
            hits.append(_hit(ctx, "dynamic_code", REVIEW, note.kind, unit, node, note.message))
    for site in _calls(ctx):
        name = site.name
        where = (site.unit.label, site.node.lineno, site.node.col_offset)
        if name in DYNAMIC_CALLS and where not in ctx.sources.resolved_execs:
            if name in ("compile", "builtins.compile") and _constant_args(site.node, 1):
                continue
            hits.append(_hit(ctx, "dynamic_code", REVIEW, "dynamic_exec", site.unit, site.node,
                             f"{last_name(name)}() of code the scanner cannot read statically"))
        elif name in ("importlib.import_module", "importlib.__import__") and not _constant_args(site.node, 1):
            hits.append(_hit(ctx, "dynamic_code", REVIEW, "computed_import", site.unit, site.node,
                             "importlib.import_module of a computed module name"))
        elif name in SUBPROCESS_CALLS:
            words = _command(site)
            if words is None or (words and words[0] == "<computed>"):
                hits.append(_hit(ctx, "dynamic_code", REVIEW, "computed_command", site.unit, site.node,
                                 f"{name} runs a command the scanner cannot read statically"))
            elif _program(words).startswith("python") and len(words) > 1 and words[1] == "-c":
                hits.append(_hit(ctx, "dynamic_code", REVIEW, "python_dash_c", site.unit, site.node,
                                 f"{name} runs Python code given on a command line"))
    return hits


def _at(line: int | None, col: int | None) -> ast.AST | None:
    if line is None:
        return None
    node = ast.Pass()
    node.lineno, node.col_offset = line, col or 0
    return node


def _constant_args(node: ast.Call, count: int) -> bool:
    return len(node.args) >= count and all(isinstance(a, ast.Constant) for a in node.args[:count])


@detector("native_code")
def native_code(ctx: Context) -> list[Hit]:
    hits = []
    val_calls = [e for fn in ctx.program.functions.values() for e in ctx.analysis.events(fn)
                 if e.kind == ev.NATIVE_CALL and e.own and VAL in e.taint]
    fed = f"; it is given validation tokens ({val_calls[0].unit}:{val_calls[0].line})" if val_calls else ""
    for site in _calls(ctx):
        if site.name in NATIVE_CALLS or site.name.startswith("torch.utils.cpp_extension."):
            hits.append(_hit(ctx, "native_code", REVIEW, "native_library", site.unit, site.node,
                             f"loads native code through {site.name}, which the scanner cannot read{fed}"))
        elif site.name in SUBPROCESS_CALLS:
            words = _command(site)
            if words and COMPILERS.match(_program(words)):
                hits.append(_hit(ctx, "native_code", REVIEW, "native_build", site.unit, site.node,
                                 f"compiles native code with `{' '.join(words[:4])}…`, which the scanner cannot read{fed}"))
    referenced = _referenced_native(ctx)
    for relpath in ctx.sources.native_files:
        if relpath not in referenced:
            hits.append(Hit(rule="native_code", outcome=NOTE, kind="native_source", unit=relpath, line=None,
                            reason=f"{relpath} is native source in the folder; no run file names it"))
    return hits


def _referenced_native(ctx: Context) -> set[str]:
    names = {PurePosixPath(rel).name: rel for rel in ctx.sources.native_files}
    found = set()
    for unit in ctx.sources.run_units():
        for name, rel in names.items():
            if name in unit.text:
                found.add(rel)
    return found


@detector("outside_files")
def outside_files(ctx: Context) -> list[Hit]:
    hits = []
    for site in _calls(ctx):
        is_read = site.name in FILE_CALLS or (isinstance(site.node.func, ast.Attribute) and site.node.func.attr in ("read_bytes", "read_text"))
        if not is_read or _opens_for_writing(site.node):
            continue
        path = _path_head(site, ctx)
        if path and _outside(path):
            hits.append(_hit(ctx, "outside_files", REVIEW, "outside_path", site.unit, site.node,
                             f"{last_name(site.name) or 'reads'} {path!r}, outside the submission folder and the data paths"))
    return hits


def _opens_for_writing(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax")


def _path_head(site: CallSite, ctx: Context) -> str | None:
    """The constant start of the path a call reads (through expanduser and Path(...))."""
    node = site.node
    target = node.args[0] if node.args else None
    if target is None and isinstance(node.func, ast.Attribute):  # Path("/x").read_text()
        inner = node.func.value
        target = inner.args[0] if isinstance(inner, ast.Call) and inner.args else None
    aliases = site.unit.aliases()
    while isinstance(target, ast.Call) and target.args and canonical(target.func, aliases) in (
            "os.path.expanduser", "os.path.join", "pathlib.Path", "os.path.abspath"):
        target = target.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value
    if isinstance(target, ast.JoinedStr) and target.values and isinstance(target.values[0], ast.Constant):
        return str(target.values[0].value)
    return None


def _outside(path: str) -> bool:
    if DATA_PATH.search(path):
        return False  # a dataset or tokenizer kept elsewhere is still the challenge's data
    if path.startswith("~") or "../" in path or path == "..":
        return True
    return path.startswith("/") and not path.startswith(ALLOWED_ABSOLUTE)


def env_reads(ctx: Context) -> dict[str, list[str]]:
    """Environment variable names each run unit reads (constant names; '<computed>' otherwise)."""
    if "env" in ctx.cache:
        return ctx.cache["env"]
    found: dict[str, list[str]] = {}
    for unit in ctx.parsed_units():
        if unit.role not in ("entry", "reached"):
            continue
        aliases = unit.aliases()
        names: list[str] = []
        for node in unit.nodes():
            key = None
            if isinstance(node, ast.Call) and canonical(node.func, aliases) in ENV_READERS:
                key = node.args[0] if node.args else None
            elif isinstance(node, ast.Subscript) and canonical(node.value, aliases) == "os.environ":
                key = node.slice
            elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and \
                    any(canonical(c, aliases) == "os.environ" for c in node.comparators):
                key = node.left
            else:
                continue
            names.append(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "<computed>")
        if names:
            found[unit.label] = sorted(set(names))
    ctx.cache["env"] = found
    return found


@detector("env_probe")
def env_probe(ctx: Context) -> list[Hit]:
    hits = []
    for unit in ctx.parsed_units():
        aliases = unit.aliases()
        for node in unit.nodes():
            name, key = None, None
            if isinstance(node, ast.Call):
                name = canonical(node.func, aliases)
                if name in ENV_READERS and node.args and isinstance(node.args[0], ast.Constant):
                    key = node.args[0].value
                elif name in PROBE_CALLS:
                    hits.append(_hit(ctx, "env_probe", REVIEW, "host_probe", unit, node,
                                     f"{name}() tells one machine or user from another"))
                    continue
                elif name in WHOLE_ENV or (name == "dict" and node.args and canonical(node.args[0], aliases) == "os.environ"):
                    hits.append(_hit(ctx, "env_probe", REVIEW, "whole_environment", unit, node,
                                     "reads the whole environment, not named settings"))
                    continue
            elif isinstance(node, ast.Subscript) and canonical(node.value, aliases) == "os.environ" and isinstance(node.slice, ast.Constant):
                key = node.slice.value
            if isinstance(key, str) and PROBE_NAMES.match(key):
                hits.append(_hit(ctx, "env_probe", REVIEW, "environment_probe", unit, node,
                                 f"reads environment variable {key}, which tells the official or verification run apart "
                                 "from the submitter's"))
    return hits
