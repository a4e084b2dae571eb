#!/bin/sh
# Entrypoint of Keel CI's stand-in `redis:7` image (Debian bookworm's Redis 7.0; see build.sh). Like the
# official image: data in /data owned by user `redis`, and `redis-server` given no config file runs with
# protected mode off (the container network, not the bind address, is the boundary).
set -eu
if [ "${1:-}" = redis-server ]; then
  case "${2:-}" in
    *.conf) ;;
    *) shift; set -- redis-server "$@" --protected-mode no ;;
  esac
fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p /data
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
