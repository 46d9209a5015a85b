# Sourced by the scripts: what they share.
# as_root CMD...: run CMD as root (directly when already root, else through sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
