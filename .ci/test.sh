#!/usr/bin/env bash
# The project's test command (README.md): static checks, then every package's tests under the
# race detector. PostgreSQL-backed tests start their own throwaway cluster through internal/pgtest
# (or use DATABASE_URL when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."
for d in /usr/lib/postgresql/*/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done
export PATH

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# Every benchmark once, so the suites against the anchors keep working (numbers are not judged here).
go test -count=1 -run '^$' -bench . -benchtime 1x ./bench
go test -race -count=1 -timeout 40m ./...
