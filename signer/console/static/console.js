// console.js — the few things the quorate console needs JavaScript for:
// WebAuthn sign-in, approval and enrolment (QuoratePasskey from passkey.js).
// Everything else reads without it. Loaded with <script src>: the console's
// Content-Security-Policy allows no inline script.
"use strict";
(function () {
  const P = () => globalThis.QuoratePasskey;

  function csrf() {
    const m = document.querySelector('meta[name="quorate-csrf"]');
    return m ? m.content : "";
  }

  function say(el, text, ok) {
    el.textContent = text; // text, never HTML
    el.className = "status " + (ok ? "ok" : "error");
  }

  async function post(url, token, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body),
    });
    let out = {};
    try { out = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error(out.error || res.status + " " + res.statusText);
    return out;
  }

  async function signIn(btn) {
    const status = document.getElementById("signin-status");
    try {
      say(status, "Asking your passkey…", true);
      const ch = await post("/ui/signin/challenge", btn.dataset.csrf, {});
      const a = await P().assertion({ rpId: ch.rpId, challenge: P().fromB64url(ch.challenge), credentialIds: ch.credentialIds });
      const out = await post("/ui/signin/passkey", btn.dataset.csrf, { id: ch.id, credentialId: a.credentialId, sig: a.sig, next: btn.dataset.next });
      say(status, "Signed in.", true);
      location.assign(out.next);
    } catch (e) {
      say(status, "Sign-in failed: " + e.message, false);
    }
  }

  async function approve(btn) {
    const status = document.getElementById("approve-status");
    const d = btn.dataset;
    btn.disabled = true;
    try {
      say(status, "Asking your passkey to sign this request…", true);
      const entry = await P().approve({ rpId: d.rpid, keyid: d.keyid, credentialId: d.credential, userVerification: d.uv, payloadType: d.payloadType, payload: d.payload });
      const out = await post("/ui/requests/" + encodeURIComponent(d.request) + "/approve", csrf(), entry);
      say(status, "Approved as " + out.role + (out.completed ? ": the request is complete." : "."), true);
      setTimeout(() => location.reload(), 600);
    } catch (e) {
      btn.disabled = false;
      say(status, "Not approved: " + e.message, false);
    }
  }

  async function enrol(form) {
    const status = document.getElementById("enrol-status");
    const name = document.getElementById("enrol-name").value;
    try {
      say(status, "Creating a passkey…", true);
      const key = await P().enrol({
        rpId: document.getElementById("enrol-rpid").value,
        rpName: "quorate",
        user: { id: crypto.getRandomValues(new Uint8Array(16)), name: name },
        userVerification: document.getElementById("enrol-uv").checked ? "required" : "preferred",
      });
      const text = JSON.stringify(key, null, 2) + "\n";
      document.getElementById("enrol-json").textContent = text;
      const link = document.getElementById("enrol-download");
      link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      document.getElementById("enrol-result").hidden = false;
      say(status, "Passkey created. Give the file below to an administrator.", true);
    } catch (e) {
      say(status, "Enrolment failed: " + e.message, false);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const s = document.getElementById("signin-passkey");
    if (s) s.addEventListener("click", () => signIn(s));
    const a = document.getElementById("approve");
    if (a) a.addEventListener("click", () => approve(a));
    const f = document.getElementById("enrol-form");
    if (f) f.addEventListener("submit", (ev) => { ev.preventDefault(); enrol(f); });
  });
})();
