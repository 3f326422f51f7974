#!/usr/bin/env bash
# developer.sh — the originator, on a developer laptop: open a signing request
# for the release artifact. The request is signed with the developer's key
# (in a YubiKey/HSM in real life: a pkcs11: URI); that signature counts as the
# originator's. Prints the request ID alone on stdout for the next party.
#
#   QUORATE_COORDINATOR=https://quorate.example.com \
#   QUORATE_KEY='pkcs11:token=alice;object=originator?module-path=...&pin-source=file:...' \
#   TRUST=trust ./developer.sh dist/app.tar.gz [GATE]
#
# Environment: QUORATE_COORDINATOR (URL), QUORATE_KEY (your key URI), TRUST
# (your copy of the trust directory: the coordinator's policy must match it),
# QUORATE (binary, default: quorate on PATH).
set -euo pipefail
Q=${QUORATE:-quorate}
artifact=${1:?usage: developer.sh ARTIFACT [GATE]}
gate=${2:-production}
: "${QUORATE_COORDINATOR:?set QUORATE_COORDINATOR to the coordinator URL}"
: "${QUORATE_KEY:?set QUORATE_KEY to your originator key URI}"
: "${TRUST:?set TRUST to your trust directory}"

echo "developer: opening a request for $artifact (gate $gate)" >&2
"$Q" request create --trust "$TRUST" --gate "$gate" --artifact "$artifact" --key "$QUORATE_KEY"
