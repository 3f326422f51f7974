#!/usr/bin/env bash
# ci.sh — the integrator, as a CI job: after building the artifact itself,
# sign the request only if the request covers exactly the file this job built
# (--artifact) under the policy CI trusts (--trust). The private key stays in
# the KMS or HSM; only the signature leaves (see examples/ci/ for the
# GitHub Actions and GitLab CI versions of this step).
#
#   QUORATE_COORDINATOR=... QUORATE_KEY='awskms:///arn:aws:kms:...' TRUST=trust ./ci.sh REQUEST-ID dist/app.tar.gz
set -euo pipefail
Q=${QUORATE:-quorate}
id=${1:?usage: ci.sh REQUEST-ID ARTIFACT}
artifact=${2:?usage: ci.sh REQUEST-ID ARTIFACT}
: "${QUORATE_COORDINATOR:?set QUORATE_COORDINATOR to the coordinator URL}"
: "${QUORATE_KEY:?set QUORATE_KEY to the integrator key URI}"
: "${TRUST:?set TRUST to the trust directory}"

echo "ci: signing request $id for the $artifact this job built" >&2
"$Q" sign --request "$id" --artifact "$artifact" --trust "$TRUST" --key "$QUORATE_KEY"
