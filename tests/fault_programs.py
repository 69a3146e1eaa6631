"""Misbehaving stand-ins for the host programs pycrio runs, for fault-injection tests.

Each reads `<dir>/fault` before doing its real work: a line `<step> fail|hang|kill` makes the call of that
step exit 1 with a message, sleep until killed (its pid appended to `<dir>/hung`), or die of SIGKILL. The CNI
plugin also knows `garbage` (prints what is not JSON and exits 0), `endless` (prints without end) and
`linger` (leaves a process in a session of its own holding its stdout, its pid in `<dir>/hung`, and then
does its work).
"""

from pathlib import Path

_RUNTIME = """#!/bin/sh
# runc, unless the fault file names this call's step: "<step> fail|hang|kill".
for arg in "$@"; do
  case "$arg" in create|start|kill|delete|exec|state) step=$arg; break;; esac
done
if [ -f @DIR@/fault ]; then
  read want how < @DIR@/fault
  if [ "$want" = "$step" ]; then
    case "$how" in
      fail) echo "injected: runtime $step refused" >&2; exit 1;;
      hang) echo $$ >> @DIR@/hung; exec sleep 100000;;
      kill) kill -KILL $$;;
    esac
  fi
fi
exec @RUNC@ "$@"
"""

_CNI_PLUGIN = """#!/bin/sh
# Passes the previous result on, unless the fault file names this command:
# "<ADD|DEL> fail|hang|kill|garbage|endless|linger".
input=$(cat)
if [ -f @DIR@/fault ]; then
  read want how < @DIR@/fault
  if [ "$want" = "$CNI_COMMAND" ]; then
    case "$how" in
      fail) echo '{"code": 11, "msg": "injected: pcfault refused '"$CNI_COMMAND"'"}'; exit 1;;
      hang) echo $$ >> @DIR@/hung; exec sleep 100000;;
      kill) kill -KILL $$;;
      garbage) printf 'injected \001\377 not json {'; exit 0;;
      endless) echo $$ >> @DIR@/hung; exec yes injected-endless-output;;
      linger) setsid sh -c 'echo $$ >> @DIR@/hung; exec sleep 100000' & ;;
    esac
  fi
fi
if [ "$CNI_COMMAND" = ADD ]; then
  printf '%s' "$input" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["prevResult"]))'
fi
"""


def install_runtime(directory: Path, runc: str) -> Path:
    """An OCI runtime: `runc`, unless the fault file names the call's step (create, start, kill, ...)."""
    path = directory / "runc"
    path.write_text(_RUNTIME.replace("@DIR@", str(directory)).replace("@RUNC@", runc))
    path.chmod(0o755)
    return path


def install_cni_plugin(directory: Path) -> str:
    """A chained CNI plugin `pcfault` that passes the previous result on unless the fault file names the
    command (ADD, DEL); returns its type."""
    path = directory / "pcfault"
    path.write_text(_CNI_PLUGIN.replace("@DIR@", str(directory)))
    path.chmod(0o755)
    return "pcfault"


def hung_pids(directory: Path) -> list[int]:
    try:
        return [int(line) for line in (directory / "hung").read_text().split()]
    except FileNotFoundError:
        return []
