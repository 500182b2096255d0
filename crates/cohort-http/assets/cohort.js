/* cohort.js: the cohort website tracker (served at GET /cohort.js).
 * Sends a context request per page view and applies the answer:
 * redirect, HTML snippets, slot variants. Dependency-free ES2017. */
(() => {
  "use strict";
  if (window.cohort && window.cohort.track) return; // included twice

  // Configuration: window.cohortConfig wins over the script tag's data-*.
  const script = document.currentScript;
  const tag = (script && script.dataset) || {};
  const given = window.cohortConfig || {};
  const config = {
    app: given.app || tag.app,
    key: given.key || tag.key || "",
    // The logged-in customer, as a token the site's server got from cohort.
    customerToken: given.customerToken || tag.customerToken || null,
    consentRequired: (given.consent || tag.consent) === "required",
    base: given.base || new URL(script ? script.src : "/", location.href).origin,
  };

  // Storage: localStorage, else a first-party cookie ("cohort.visitor" -> "cohort_visitor").
  const cookieName = (name) => name.replace(".", "_");
  function read(name) {
    try {
      return localStorage.getItem(name);
    } catch (e) {
      const prefix = cookieName(name) + "=";
      const found = document.cookie.split("; ").find((c) => c.startsWith(prefix));
      return found ? decodeURIComponent(found.slice(prefix.length)) : null;
    }
  }
  function write(name, value) { // null removes
    try {
      if (value === null) localStorage.removeItem(name);
      else localStorage.setItem(name, value);
    } catch (e) {
      const age = value === null ? 0 : 31536000;
      document.cookie = `${cookieName(name)}=${encodeURIComponent(value || "")}; path=/; max-age=${age}; SameSite=Lax`;
    }
  }

  // Consent: the stored choice, else implied unless the site requires it.
  const choice = () => read("cohort.consent");
  const consentGiven = () => choice() === "granted" || (!config.consentRequired && choice() !== "denied");

  let answer = null; // the last response applied
  let sequence = 0; // only the latest request's answer is applied
  let current = Promise.resolve(null);
  const mark = (state) => { document.documentElement.dataset.cohort = state; };
  const domReady = new Promise((resolve) => {
    if (document.readyState !== "loading") resolve();
    else document.addEventListener("DOMContentLoaded", resolve, { once: true });
  });

  // Page tags: integers listed in <meta name="cohort:segments" content="12 14">.
  function pageSegments() {
    const ids = [];
    for (const meta of document.querySelectorAll('meta[name="cohort:segments"]'))
      for (const word of meta.content.split(/[\s,]+/))
        if (/^\d+$/.test(word) && !ids.includes(+word)) ids.push(+word);
    return ids;
  }

  // Slots: {slot: [variant names except "default"]}.
  const variantsOf = (slot) => Array.from(slot.children).filter((el) => el.dataset.cohortVariant);
  function pageSlots() {
    const slots = {};
    for (const slot of document.querySelectorAll("[data-cohort-slot]")) {
      const names = (slots[slot.dataset.cohortSlot] = slots[slot.dataset.cohortSlot] || []);
      for (const { dataset } of variantsOf(slot))
        if (dataset.cohortVariant !== "default" && !names.includes(dataset.cohortVariant))
          names.push(dataset.cohortVariant);
    }
    return slots;
  }

  function requestBody() {
    const body = { url: location.href, slots: pageSlots(), consent: consentGiven() };
    const visitor = body.consent && read("cohort.visitor");
    const segments = pageSegments();
    if (visitor) body.visitor = visitor;
    if (body.consent && config.customerToken) body.customer_token = String(config.customerToken);
    if (document.referrer) body.referrer = document.referrer;
    if (segments.length) body.segments = segments;
    return body;
  }

  async function postContext(body) {
    const query = config.key ? `?key=${encodeURIComponent(config.key)}` : "";
    const url = `${config.base}/v1/applications/${encodeURIComponent(config.app)}/context${query}`;
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" }, // a simple request: no preflight
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: true,
    });
    const json = (await response.json().catch(() => null)) || {};
    if (!response.ok) throw new Error([response.status, json.title, json.detail].filter(Boolean).join(" "));
    return json;
  }

  // Snippet HTML goes into <head> or <body>; createContextualFragment runs its scripts.
  function insertSnippet({ html, place, position }) {
    const target = place === "head" ? document.head : document.body;
    const range = document.createRange();
    range.selectNodeContents(target);
    const fragment = range.createContextualFragment(html || "");
    if (position === "replace") target.replaceChildren(fragment);
    else if (position === "beginning") target.prepend(fragment);
    else target.append(fragment);
  }

  // Each slot shows the chosen variant, else its default (a slot with neither is left alone).
  function showVariants(chosen) {
    for (const slot of document.querySelectorAll("[data-cohort-slot]")) {
      const options = variantsOf(slot);
      const pick = (name) => options.find((el) => el.dataset.cohortVariant === name);
      const shown = pick(chosen[slot.dataset.cohortSlot]) || pick("default");
      if (shown) options.forEach((el) => { el.hidden = el !== shown; });
    }
  }

  // A redirect replaces everything else; returns whether the page stays.
  function apply(result) {
    const redirect = result.redirect;
    if (redirect && redirect.url && redirect.url !== location.href) {
      location.replace(redirect.url);
      return false;
    }
    (result.snippets || []).forEach(insertSnippet);
    showVariants(result.variants || {});
    return true;
  }

  // One page view: ask, remember the visitor, apply. Resolves to the answer or null.
  async function send() {
    await domReady;
    const mine = ++sequence; // an answer still on its way is now stale
    if (!config.app) {
      console.warn("cohort: no data-app configured");
      mark("error");
      return null;
    }
    if (config.consentRequired && !consentGiven()) {
      mark("waiting-consent");
      return null;
    }
    mark("loading");
    try {
      const result = await postContext(requestBody());
      if (mine !== sequence) return result;
      if (result.visitor && consentGiven()) write("cohort.visitor", result.visitor);
      answer = result;
      mark(apply(result) ? "ready" : "redirecting");
      document.dispatchEvent(new CustomEvent("cohort:ready", { detail: result }));
      return result;
    } catch (error) {
      console.warn("cohort: context request failed:", error.message);
      if (mine === sequence) mark("error");
      return null;
    }
  }
  const track = () => (current = send());

  window.cohort = {
    get ready() { return current; }, // the latest request's promise
    visitor: () => (answer && answer.visitor) || (consentGiven() && read("cohort.visitor")) || null,
    targetGroups: () => (answer && answer.target_groups) || [],
    variant: (slot) => (answer && answer.variants && answer.variants[slot]) || null,
    consent(granted) {
      write("cohort.consent", granted ? "granted" : "denied");
      if (!granted) {
        write("cohort.visitor", null);
        answer = null;
        showVariants({}); // back to the defaults
      }
      return track(); // denied and required: only marks "waiting-consent"
    },
    identify(customerToken) {
      config.customerToken = customerToken;
      return track();
    },
    track,
  };
  track();
})();
