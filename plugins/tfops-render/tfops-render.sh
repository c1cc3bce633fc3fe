#!/bin/sh
# Entry point of the Helm 4 `tfops-render` post-renderer plugin: Helm pipes the rendered
# manifests to stdin and passes the --post-renderer-args as arguments; we run `tfops render`.
# exec (here and in plugin/tfops.sh) keeps tfops a direct child of helm: Helm 4 drops a
# post-renderer plugin's stderr, so tfops also writes what the user must read to helm's own
# stderr, which it finds through its parent process.
here=$(cd "$(dirname "$0")" && pwd -P) || exit 1
exec "$here/../../plugin/tfops.sh" render "$@"
