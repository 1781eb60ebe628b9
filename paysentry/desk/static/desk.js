// The desk's only script (served from /static; the CSP allows no inline script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input.pick")) {
        box.checked = all.checked;
      }
    });
  }
});
