#!/bin/sh
# Entry point of the Helm 4 `tfops-render` post-renderer plugin: Helm pipes the rendered
# manifests to stdin and passes the --post-renderer-args as arguments; we run `tfops render`.
#
# Helm 4 captures a post-renderer plugin's stderr and throws it away: on failure the user only
# reads `plugin "tfops-render" exited with error`. So tfops's stderr (the reason, naming the
# chart file and field, and any warnings) is also copied to helm's own stderr
# (/proc/<helm pid>/fd/2), when that is a terminal, a pipe, or a file opened for appending
# (a file helm writes at its own offset would overwrite what we add).
here=$(cd "$(dirname "$0")" && pwd -P) || exit 1
tfops="$here/../../scripts/tfops.sh"

forward_to_helm() {
  [ "${HELM_PLUGIN_NAME:-}" = "tfops-render" ] || return 0
  target=/proc/$PPID/fd/2
  [ -e "$target" ] || return 0
  # Same stream as ours (not run by Helm 4's plugin runtime): already shown.
  [ "$(readlink "$target" 2>/dev/null)" != "$(readlink /proc/$$/fd/2 2>/dev/null)" ] || return 0
  if [ -p "$target" ] || [ -c "$target" ]; then
    :
  elif [ -f "$target" ]; then
    flags=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$PPID/fdinfo/2" 2>/dev/null)
    [ -n "$flags" ] || return 0
    [ $(( 0$flags & 1024 )) -ne 0 ] || return 0 # O_APPEND (octal 02000)
  else
    return 0
  fi
  cat "$1" >>"$target" 2>/dev/null || :
}

errfile=$(mktemp "${TMPDIR:-/tmp}/tfops-render.XXXXXX" 2>/dev/null) || exec "$tfops" render "$@"
trap 'rm -f "$errfile"' EXIT
"$tfops" render "$@" 2>"$errfile"
rc=$?
if [ -s "$errfile" ]; then
  cat "$errfile" >&2
  forward_to_helm "$errfile"
fi
exit $rc
