/* graphopt search report: sortable table, and a side panel for the selected candidate.
   Data comes from the JSON block; every string is put in the page with textContent, never as HTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var byId = {};
  data.candidates.forEach(function (c) { byId[c.id] = c; });

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function score(v, se) { return v === null || v === undefined ? "—" : v.toFixed(3) + (se ? " ± " + se.toFixed(3) : ""); }
  function num(v) { return v === null || v === undefined ? "—" : Math.round(v).toLocaleString("en-US"); }
  function usd(v) { return v === null || v === undefined ? "—" : (v === 0 ? "$0" : "$" + v.toFixed(4)); }

  /* ---- sorting ---- */
  var table = document.getElementById("cand-table");
  if (table) {
    var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;  /* the row under "tokens" */
    Array.prototype.forEach.call(heads, function (th, index) {
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var numeric = th.getAttribute("data-type") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[index].getAttribute("data-v"), y = b.cells[index].getAttribute("data-v");
          if (x === "" || y === "") return (x === "") - (y === "");  /* missing values last either way */
          var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, { numeric: true });
          if (d === 0) d = parseFloat(a.cells[0].getAttribute("data-v")) - parseFloat(b.cells[0].getAttribute("data-v"));
          return ascending ? d : -d;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sort(); } });
    });
  }

  /* ---- side panel ---- */
  var panel = document.getElementById("panel-body");

  function idList(ids) {
    var span = el("span");
    if (!ids.length) span.textContent = "—";
    ids.forEach(function (id, i) {
      if (i) span.appendChild(document.createTextNode(", "));
      var b = el("button", id, "link");
      b.setAttribute("data-cid", id);
      span.appendChild(b);
    });
    return span;
  }

  function select(cid) {
    var c = byId[cid];
    if (!c || !panel) return;
    document.querySelectorAll(".selected").forEach(function (n) { n.classList.remove("selected"); });
    document.querySelectorAll('[data-cid="' + CSS.escape(cid) + '"]').forEach(function (n) {
      if (n.tagName !== "BUTTON" && n.tagName !== "TEMPLATE") n.classList.add("selected");
    });
    panel.textContent = "";
    var title = el("h3", c.id + " · " + c.name);
    if (c.id === data.winner) title.appendChild(el("span", data.final ? "winner" : "best so far", "badge"));
    panel.appendChild(title);
    var dl = el("dl");
    function row(label, value) {
      dl.appendChild(el("dt", label));
      var dd = el("dd");
      if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
      dl.appendChild(dd);
    }
    row("made by", c.origin + (c.mutation ? " · " + c.mutation : ""));
    row("generation", c.generation);
    row("status", c.status);
    row("val", c.status === "done" ? score(c.val, c.val_stderr) : "pending");
    row("test", score(c.test, c.test_stderr));
    row("tokens", num(c.total_tokens) + " (program " + num(c.tokens.program) + ", optimizer " +
        num(c.tokens.optimizer) + ", meta " + num(c.tokens.meta) + ")");
    row("dollars", usd(c.dollars));
    row("parents", idList(c.parents));
    row("children", idList(c.children || []));
    panel.appendChild(dl);
    if (c.error) panel.appendChild(el("pre", c.error, "error"));
    var tpl = document.querySelector('#minis template[data-cid="' + CSS.escape(cid) + '"]');
    if (tpl) panel.appendChild(document.importNode(tpl.content, true));
    panel.appendChild(el("h4", "Nodes"));
    var ul = el("ul");
    c.nodes.forEach(function (n) {
      var li = el("li");
      li.appendChild(el("code", n.id));
      li.appendChild(document.createTextNode(" " + n.op + (n.overrides.length ? " · prompt override: " + n.overrides.join(", ") : "")));
      ul.appendChild(li);
    });
    panel.appendChild(ul);
    var edges = el("details");
    edges.appendChild(el("summary", c.edges.length + " edges"));
    var eul = el("ul");
    c.edges.forEach(function (e) { eul.appendChild(el("li", e)); });
    edges.appendChild(eul);
    panel.appendChild(edges);
    if (c.instruction) {
      panel.appendChild(el("h4", "Tuned program instruction"));
      panel.appendChild(el("pre", c.instruction));
    }
  }

  document.addEventListener("click", function (ev) {
    var target = ev.target.closest ? ev.target.closest("[data-cid]") : null;
    if (target) select(target.getAttribute("data-cid"));
  });
  document.addEventListener("keydown", function (ev) {
    var target = ev.target;
    if ((ev.key === "Enter" || ev.key === " ") && target.getAttribute && target.getAttribute("role") === "button" && target.hasAttribute("data-cid")) {
      ev.preventDefault();
      select(target.getAttribute("data-cid"));
    }
  });
  select(data.winner || (data.candidates[0] && data.candidates[0].id));
})();
