#!/usr/bin/env bash
# Regenerate the test key material in core/tests/keys/. Test-only keys: never use them anywhere else.
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-other.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
openssl genpkey -algorithm Ed25519 -out ed25519.pem
for k in rsa rsa-other ec ed25519; do openssl pkey -in "$k.pem" -pubout -out "$k.pub.pem"; done
python3 - <<'PY'
import base64, json, subprocess
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def der(name): return subprocess.run(["openssl","pkey","-pubin","-in",name+".pub.pem","-outform","DER"],check=True,capture_output=True).stdout
def rsa(name, kid):
    mod = subprocess.run(["openssl","rsa","-pubin","-in",name+".pub.pem","-noout","-modulus"],check=True,capture_output=True,text=True).stdout
    n = bytes.fromhex(mod.strip().split("=",1)[1])
    return {"kty":"RSA","kid":kid,"use":"sig","alg":"RS256","n":b64u(n),"e":b64u((65537).to_bytes(3,"big"))}
ec_pt = der("ec")[-65:]; assert ec_pt[0] == 4
ec = {"kty":"EC","kid":"ec-1","use":"sig","crv":"P-256","x":b64u(ec_pt[1:33]),"y":b64u(ec_pt[33:])}
ed = {"kty":"OKP","kid":"ed-1","use":"sig","crv":"Ed25519","x":b64u(der("ed25519")[-32:])}
json.dump({"keys":[rsa("rsa","rsa-1"), ec, ed]}, open("jwks.json","w"), indent=2)
json.dump({"keys":[rsa("rsa-other","rsa-1")]}, open("jwks-other.json","w"), indent=2)
PY
