/* Security keys (WebAuthn): enrol one, or sign in with one. The form's own submit is
   stopped, the box asked for a challenge, the browser asked for the key's answer, which
   goes back in the form's hidden "credential" field as JSON. */
"use strict";

(() => {
  const b64 = {
    decode(text) {
      const plain = text.replace(/-/g, "+").replace(/_/g, "/");
      return Uint8Array.from(atob(plain + "===".slice((plain.length + 3) % 4)), (c) => c.charCodeAt(0));
    },
    encode(buffer) {
      const text = btoa(String.fromCharCode(...new Uint8Array(buffer)));
      return text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: b64.decode(json.challenge),
      user: { ...json.user, id: b64.decode(json.user.id) },
      excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64.decode(c.id) })),
    };
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: b64.decode(json.challenge),
      allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64.decode(c.id) })),
    };
  }

  function asJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: b64.encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64.encode(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64.encode(r.authenticatorData);
      response.signature = b64.encode(r.signature);
      if (r.userHandle) response.userHandle = b64.encode(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: b64.encode(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  function wire(form, ceremony) {
    const error = document.getElementById("key-error");
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", async (event) => {
      if (form.elements.credential.value) return;
      event.preventDefault();
      if (!form.reportValidity()) return;
      error.hidden = true;
      button.disabled = true;
      try {
        const answer = await fetch(form.dataset.options, {
          method: "POST",
          headers: { "X-CSRF-Token": form.dataset.csrf },
          credentials: "same-origin",
        });
        const options = await answer.json();
        if (!answer.ok) throw new Error(options.error || "The box refused.");
        const credential = await ceremony(options);
        form.elements.credential.value = JSON.stringify(asJSON(credential));
        form.submit();
      } catch (failure) {
        error.textContent =
          failure.name === "NotAllowedError"
            ? "The key was not used in time, or the request was cancelled: try again."
            : `That did not work: ${failure.message}`;
        error.hidden = false;
        button.disabled = false;
      }
    });
  }

  if (!window.PublicKeyCredential) return;
  const add = document.getElementById("add-key");
  if (add) {
    wire(add, (json) => navigator.credentials.create({ publicKey: creationOptions(json) }));
  }
  const use = document.getElementById("use-key");
  if (use) {
    wire(use, (json) => navigator.credentials.get({ publicKey: requestOptions(json) }));
  }
})();
