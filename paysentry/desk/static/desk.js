// The desk's only script (served from /static; the CSP allows no inline script).
"use strict";

// The dashboard's panel is fetched again every data-refresh-seconds with the page's filters and swapped
// in; the server renders and escapes it. A logged-out session reloads the page (which goes to login).
function pollDashboard(box) {
  const url = box.dataset.panelUrl;
  const seconds = Math.max(2, parseInt(box.dataset.refreshSeconds, 10) || 30);
  let busy = false;
  const refresh = async () => {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected || response.status === 401 || response.status === 403) {
        window.location.reload();
        return;
      }
      if (response.ok) {
        const fragment = document.createElement("template");
        fragment.innerHTML = await response.text();
        box.replaceChildren(fragment.content);
        box.dataset.refreshes = String((parseInt(box.dataset.refreshes, 10) || 0) + 1);
      }
    } catch (error) {
      // The server is away for a moment: keep the figures shown and try again at the next tick.
    } finally {
      busy = false;
    }
  };
  window.setInterval(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input.pick")) {
        box.checked = all.checked;
      }
    });
  }
  const live = document.getElementById("dashboard-live");
  if (live) {
    pollDashboard(live);
  }
});
