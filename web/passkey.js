// passkey.js — quorate passkeys in the browser (specification: docs/passkeys.md).
//
//   QuoratePasskey.enrol(options)   creates a WebAuthn credential and returns
//       the TUF key record of a webauthn-es256 key (an object; save it as
//       JSON and give it to an administrator for `policy role --key FILE`).
//   QuoratePasskey.approve(options) asks the passkey for an assertion whose
//       challenge is SHA-256 of the DSSE PAE of (payloadType, payload) and
//       returns the DSSE signature entry {keyid, sig}.
//
// Plain JavaScript for current browsers: no dependencies, no build step, no
// inline script needed (load it with <script src>). The page must be a
// secure context (https, or http://localhost).
"use strict";
(function (global) {
  const KEY_TYPE = "webauthn-es256";
  const ES256 = -7; // COSE algorithm: ECDSA P-256 with SHA-256
  const TIMEOUT_MS = 120000;

  function bytes(buf) {
    if (buf instanceof Uint8Array) return buf;
    if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
    if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    throw new TypeError("want bytes (Uint8Array or ArrayBuffer)");
  }

  // b64 is standard base64 with padding (the DSSE "sig" and "payload").
  function b64(buf) {
    let s = "";
    for (const b of bytes(buf)) s += String.fromCharCode(b);
    return btoa(s);
  }

  function fromB64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // b64url is unpadded base64url (RFC 4648 §5), as in WebAuthn.
  function b64url(buf) {
    return b64(buf).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(s) {
    if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not unpadded base64url");
    let t = s.replace(/-/g, "+").replace(/_/g, "/");
    while (t.length % 4) t += "=";
    return fromB64(t);
  }

  function pem(spki) {
    const body = b64(spki).replace(/.{1,64}/g, "$&\n");
    return "-----BEGIN PUBLIC KEY-----\n" + body + "-----END PUBLIC KEY-----\n";
  }

  // pae is the DSSE pre-authentication encoding:
  // "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload, lengths in bytes.
  function pae(payloadType, payload) {
    const enc = new TextEncoder();
    const type = enc.encode(payloadType);
    const body = bytes(payload);
    const head = enc.encode("DSSEv1 " + type.length + " " + payloadType + " " + body.length + " ");
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  }

  async function challengeFor(payloadType, payload) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", pae(payloadType, payload)));
  }

  function userVerification(v) {
    if (v === undefined) return "required";
    if (v !== "required" && v !== "preferred") throw new Error('userVerification must be "required" or "preferred"');
    return v;
  }

  // enrol({rpId, rpName, user: {id: Uint8Array, name, displayName},
  //        origins?, userVerification?, excludeCredentialIds?: [b64url]})
  // returns {keytype, scheme, keyval: {public, credentialId, rpId, origins,
  // userVerification}}. origins defaults to [location.origin].
  async function enrol(o) {
    const uv = userVerification(o.userVerification);
    const cred = await navigator.credentials.create({
      publicKey: {
        rp: { id: o.rpId, name: o.rpName || o.rpId },
        user: { id: bytes(o.user.id), name: o.user.name, displayName: o.user.displayName || o.user.name },
        challenge: crypto.getRandomValues(new Uint8Array(32)), // no attestation is checked
        pubKeyCredParams: [{ type: "public-key", alg: ES256 }],
        authenticatorSelection: { userVerification: uv, residentKey: "preferred" },
        excludeCredentials: (o.excludeCredentialIds || []).map((id) => ({ type: "public-key", id: fromB64url(id) })),
        attestation: "none",
        timeout: TIMEOUT_MS,
      },
    });
    if (!cred) throw new Error("no credential was created");
    const r = cred.response;
    if (r.getPublicKeyAlgorithm() !== ES256) throw new Error("the authenticator made a key that is not ES256");
    const spki = r.getPublicKey();
    if (!spki) throw new Error("the browser did not return the public key");
    return {
      keytype: KEY_TYPE,
      scheme: KEY_TYPE,
      keyval: {
        public: pem(spki),
        credentialId: b64url(cred.rawId),
        rpId: o.rpId,
        origins: o.origins || [global.location.origin],
        userVerification: uv,
      },
    };
  }

  // assertion({rpId, challenge: Uint8Array, credentialIds: [b64url],
  //            userVerification?}) asks a passkey for an assertion over
  // challenge and returns {credentialId, sig}: credentialId is the unpadded
  // base64url of the credential used, sig the standard base64 of the
  // assertion encoding {"authenticatorData":…,"clientDataJSON":…,
  // "signature":…} (each value unpadded base64url, members in this order,
  // no white space).
  async function assertion(o) {
    const cred = await navigator.credentials.get({
      publicKey: {
        challenge: bytes(o.challenge),
        rpId: o.rpId,
        allowCredentials: (o.credentialIds || []).map((id) => ({ type: "public-key", id: fromB64url(id) })),
        userVerification: userVerification(o.userVerification),
        timeout: TIMEOUT_MS,
      },
    });
    if (!cred) throw new Error("no assertion was made");
    const r = cred.response;
    const entry = JSON.stringify({
      authenticatorData: b64url(r.authenticatorData),
      clientDataJSON: b64url(r.clientDataJSON),
      signature: b64url(r.signature),
    });
    return { credentialId: b64url(cred.rawId), sig: b64(new TextEncoder().encode(entry)) };
  }

  // approve({rpId, keyid, credentialId: b64url, payloadType,
  //          payload: Uint8Array | standard base64 string, userVerification?})
  // returns the DSSE signature entry {keyid, sig}, the assertion over
  // SHA-256 of the DSSE PAE of (payloadType, payload) by that credential only.
  async function approve(o) {
    const payload = typeof o.payload === "string" ? fromB64(o.payload) : bytes(o.payload);
    const a = await assertion({
      challenge: await challengeFor(o.payloadType, payload),
      rpId: o.rpId,
      credentialIds: [o.credentialId],
      userVerification: o.userVerification,
    });
    return { keyid: o.keyid, sig: a.sig };
  }

  global.QuoratePasskey = Object.freeze({ enrol, approve, assertion, pae, challengeFor, b64, b64url, fromB64, fromB64url });
})(globalThis);
