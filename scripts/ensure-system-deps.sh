#!/usr/bin/env bash
# Debian packages the test suite uses for real (no mocks): Chromium for the page, redis-server for
# the Redis cache, promtool (Debian's prometheus) to check the /metrics exposition, nginx to run
# deploy/nginx/glimpse.conf in front of glimpse, Docker (docker.io) and mmdebstrap to build and run
# the Dockerfile and the Kubernetes pod spec, ffmpeg for videos, LibreOffice for Office documents. Installs what is missing when run as root with
# apt-get; otherwise says what to install. (bench/images also wants python3-pil; the tests do not.)
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
# Videos are read with ffmpeg/ffprobe; Office documents converted with LibreOffice (Impress for
# slides, Writer for text; the tests convert a .docx and a .pptx); bench/documents compares with poppler's pdftoppm.
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-impress libreoffice-writer)
[[ -e /usr/lib/libreoffice/program/libswlo.so ]] || need+=(libreoffice-writer)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
if ((${#need[@]} == 0)); then exit 0; fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages for the tests: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Packages like nginx and redis-server start a system daemon on install; the tests start their
  # own on free loopback ports. Where no policy says otherwise, forbid service starts for the install.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "warning: missing ${need[*]}; install with: sudo apt-get install ${need[*]} (tests that need them will fail)" >&2
fi
