# Sourced by the scripts: create .venv (once) and install the toolkit into it.
# Usage: . scripts/_venv.sh [EXTRAS]   e.g. ". scripts/_venv.sh test"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${L1DB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
. "$ROOT/scripts/_common.sh"
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "l1dbproto needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2; exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian ships venv separately.
        if command -v apt-get >/dev/null; then
            as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
        else
            echo "cannot create a virtual environment: install Python's venv module" >&2; exit 1
        fi
    fi
fi
# mysqlclient compiles against the MariaDB/MySQL client headers.
if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists libmariadb 2>/dev/null; then
    if command -v apt-get >/dev/null; then
        echo "installing build headers for mysqlclient (libmariadb-dev, pkg-config, gcc) ..."
        as_root apt-get update -qq && as_root apt-get install -y -qq libmariadb-dev pkg-config build-essential >/dev/null
    else
        echo "mysqlclient needs the MySQL/MariaDB client headers and pkg-config: install them first" >&2; exit 1
    fi
fi
EXTRAS="${1:-}"
SPEC="$ROOT"; [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
# uv (from PyPI, into the venv) resolves and installs the same packages as pip, several times
# faster (80 s -> 17 s here); pip does it where uv cannot be had. --compile-bytecode: the .pyc
# files pip writes too. Without them every Python process compiles each module it imports
# (where PYTHONDONTWRITEBYTECODE is set, as on our CI machines, every time): 3 s of CPU more
# for each command the tests run.
if [ -x "$VENV/bin/uv" ] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1; then
    "$VENV/bin/uv" pip install -q --compile-bytecode --python "$VENV/bin/python" -e "$SPEC"
else
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$SPEC"
fi
export PATH="$VENV/bin:$PATH"
