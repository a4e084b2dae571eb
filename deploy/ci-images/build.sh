#!/usr/bin/env bash
# Build Keel CI's stand-in base images from Debian packages, for hosts that reach Debian and PyPI but no
# container registry. One Debian bookworm rootfs (mmdebstrap, minbase) holds everything; `podman import`
# turns it into three images tagged with the names Dockerfile and docker-compose.yml use:
#   python:3.11-slim  Debian's python3.11 + pip + venv; `python`/`pip` on PATH; installs go to /usr/local
#                     (Debian's EXTERNALLY-MANAGED marker removed, as in the official image). It carries this
#                     host's CA bundle (PIP_CERT) so pip inside a build trusts this host's TLS proxy.
#   postgres:16       stand-in: Debian bookworm's PostgreSQL **15** behind an entrypoint that honours
#                     POSTGRES_USER/PASSWORD/DB and keeps data in /var/lib/postgresql/data (postgres-entrypoint.sh).
#   redis:7           Debian bookworm's Redis 7.0, data in /data (redis-entrypoint.sh).
# Cached by content: every image carries label keel.ci.recipe=<sha256 of this directory's files and the CA
# bundle>; when all three already carry the current hash, nothing is built.
# Usage: deploy/ci-images/build.sh [--force]      (root; podman, mmdebstrap)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CA=/etc/ssl/certs/ca-certificates.crt
recipe=$(cat "$here"/build.sh "$here"/*-entrypoint.sh "$CA" | sha256sum | cut -c1-16)
images=(python:3.11-slim postgres:16 redis:7)

current() {  # current IMAGE: prints the recipe label of IMAGE, empty if absent
  podman image inspect --format '{{index .Labels "keel.ci.recipe"}}' "docker.io/library/$1" 2>/dev/null || true
}
if [ "${1:-}" != --force ]; then
  stale=0
  for img in "${images[@]}"; do [ "$(current "$img")" = "$recipe" ] || stale=1; done
  if [ $stale = 0 ]; then echo "ci-images: cached (recipe $recipe)"; exit 0; fi
fi

tmp=$(mktemp -d /var/tmp/keel-ci-images.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "ci-images: building Debian bookworm rootfs (recipe $recipe)"
# The Debian postgresql package creates a cluster 15/main on install; the stand-in makes its own in $PGDATA.
mmdebstrap --variant=minbase --quiet \
  --include=python3.11,python3-pip,python3-venv,python-is-python3,ca-certificates,postgresql-15,redis-server \
  --essential-hook='mkdir -p "$1/etc/postgresql-common" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"' \
  --customize-hook="copy-in $CA /etc/ssl/certs" \
  --customize-hook="copy-in $here/postgres-entrypoint.sh $here/redis-entrypoint.sh /usr/local/bin" \
  --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
  --customize-hook='mkdir -p "$1/data" "$1/var/lib/postgresql/data" && rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  bookworm "$tmp/rootfs.tar"

common=(--change "LABEL keel.ci.recipe=$recipe" --change "ENV LANG=C.UTF-8"
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
import() {  # import NAME CHANGE...
  local name=$1; shift
  podman import --quiet "${common[@]}" "$@" "$tmp/rootfs.tar" "docker.io/library/$name" >/dev/null
  echo "ci-images: $name"
}
import python:3.11-slim --change "ENV PIP_CERT=$CA" --change 'CMD ["python3"]'
import postgres:16 --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]' --change 'CMD ["postgres"]' \
  --change 'STOPSIGNAL SIGINT' --change 'EXPOSE 5432'
import redis:7 --change 'WORKDIR /data' --change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]' \
  --change 'CMD ["redis-server"]' --change 'EXPOSE 6379'
# The previous recipe's images, now untagged (only ours: by label).
old=$(podman images -q --filter dangling=true --filter label=keel.ci.recipe)
[ -z "$old" ] || podman rmi $old >/dev/null 2>&1 || true
