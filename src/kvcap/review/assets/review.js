"use strict";
// Search, sort and filters over the server-rendered rows; no network, no libraries.
(function () {
  const main = document.getElementById("rows");
  const rows = Array.from(main.querySelectorAll("article.v"));
  const text = rows.map((row) => row.textContent.toLowerCase());
  const order = rows.map((_, i) => i);
  const q = document.getElementById("q");
  const sort = document.getElementById("sort");
  const errors = document.getElementById("errors");
  const suspect = document.getElementById("suspect");
  const shown = document.getElementById("shown");

  function value(row, key) {
    const raw = row.dataset[key];
    return raw === undefined || raw === "" ? null : Number(raw);
  }

  function apply() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let count = 0;
    rows.forEach((row, i) => {
      const show = words.every((w) => text[i].includes(w)) &&
        (!errors.checked || row.dataset.e === "1") && (!suspect.checked || row.dataset.s === "1");
      row.hidden = !show;
      if (show) count += 1;
    });
    shown.textContent = count + " of " + rows.length + " videos";
  }

  function reorder() {
    const [key, dir] = sort.value.split(":");
    const sign = Number(dir || 1);
    const keyed = order.slice();
    if (key === "k") {
      keyed.sort((a, b) => a - b);
    } else {
      // Rows without the figure go last whichever way the sort runs.
      keyed.sort((a, b) => {
        const x = value(rows[a], key), y = value(rows[b], key);
        if (x === null || y === null) return (x === null) - (y === null) || a - b;
        return sign * (x - y) || a - b;
      });
    }
    const fragment = document.createDocumentFragment();
    keyed.forEach((i) => fragment.appendChild(rows[i]));
    main.appendChild(fragment);
  }

  let timer = 0;
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 120); });
  sort.addEventListener("change", reorder);
  errors.addEventListener("change", apply);
  suspect.addEventListener("change", apply);
  apply();
})();
