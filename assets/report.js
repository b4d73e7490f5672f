// tcplab's HTML report: draws the ladders (a page of arrows at a time) and the packet lists
// (only the rows in view) from the data embedded in the page. Nothing is fetched; every text
// from the run goes into the page as text (textContent), never as markup.
"use strict";
(function () {
  var errors = [];
  function showError(message) {
    errors.push(String(message));
    document.documentElement.setAttribute("data-errors", String(errors.length));
    var box = document.getElementById("errors");
    if (box) {
      box.hidden = false;
      box.textContent = "The page failed to draw part of the report: " + errors.join("; ");
    }
  }
  window.addEventListener("error", function (e) { showError(e.message); });

  var SVG = "http://www.w3.org/2000/svg";
  var PAGE = 200;
  var data;
  try {
    data = JSON.parse(document.getElementById("data").textContent);
  } catch (e) {
    showError("the report's data does not parse: " + e);
    return;
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) { node.setAttribute(k, attrs[k]); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function html(name, cls, text) {
    var node = document.createElement(name);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // ---- ladders ----
  var COL = 170, LEFT = 96, TOP = 44, ROW = 30, NOTES = 200;

  function drawLadder(box, ladder, page) {
    var canvas = box.querySelector(".canvas");
    var pager = box.querySelector(".pager");
    var total = ladder.arrows.length;
    var pages = Math.max(1, Math.ceil(total / PAGE));
    var first = page * PAGE;
    var arrows = ladder.arrows.slice(first, first + PAGE);
    var ncols = ladder.columns.length;
    // Room on the right for the longest note (what stopped a packet).
    var longest = 0;
    arrows.forEach(function (a) {
      var n = (a.stopped ? a.stopped.length + 2 : 0) + (a.retransmission ? 21 : 0);
      if (n > longest) { longest = n; }
    });
    var width = LEFT + ncols * COL + Math.max(NOTES, longest * 6.8 + 24);
    var height = TOP + arrows.length * ROW + 16;
    var svg = el("svg", { "class": "ladder-svg", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, "data-arrows": String(total),
      "data-columns": ladder.columns.join(" ") });
    var colX = function (k) { return LEFT + k * COL + COL / 2; };
    for (var k = 0; k < ncols; k++) {
      svg.appendChild(el("text", { "class": "col-name", x: colX(k), y: 18 }, ladder.columns[k]));
      svg.appendChild(el("line", { "class": "col-line" + (ladder.columns[k] === "VPC router" ? " router" : ""), x1: colX(k), y1: 26, x2: colX(k), y2: height - 6 }));
    }
    arrows.forEach(function (a, n) {
      var y = TOP + n * ROW + ROW / 2;
      var g = el("g", { "class": "arrow" + (a.retransmission ? " retransmission" : "") + (a.stopped ? " stopped" : ""),
        tabindex: "0", "data-label": a.label,
        "data-hops": a.seen.map(function (h) { return h.capture + ":" + h.packet; }).join(" ") });
      if (a.stopped) { g.setAttribute("data-stopped", a.stopped); }
      g.appendChild(el("title", {}, a.info + (a.stopped ? "\n" + a.stopped : "")));
      g.appendChild(el("rect", { "class": "band", x: 0, y: y - ROW / 2, width: width, height: ROW }));
      g.appendChild(el("text", { "class": "time", x: LEFT - 10, y: y + 4 }, a.at_s.toFixed(6)));
      if (a.seen.length === 0) { svg.appendChild(g); return; }
      var dir = a.rightward ? 1 : -1;
      var x1 = colX(Math.min(a.seen[0].column, ncols - 1));
      // A rule of the VPC router stopped it: it ends at the router's column, which no
      // capture sees.
      var router = ladder.columns.indexOf("VPC router");
      var atRouter = a.stopped && a.stopped_in === "router" && router >= 0;
      var x2 = colX(atRouter ? router : Math.min(a.seen[a.seen.length - 1].column, ncols - 1));
      // Seen at one point only, or stopped past it: it goes on a little, and ends.
      if (!atRouter && (x1 === x2 || a.stopped)) { x2 += dir * COL * 0.42; }
      g.appendChild(el("line", { "class": "shaft", x1: x1, y1: y, x2: x2 - (a.stopped ? 0 : dir * 8), y2: y }));
      if (a.stopped) {
        g.appendChild(el("line", { "class": "stop", x1: x2 - 6, y1: y - 6, x2: x2 + 6, y2: y + 6 }));
        g.appendChild(el("line", { "class": "stop", x1: x2 - 6, y1: y + 6, x2: x2 + 6, y2: y - 6 }));
      } else {
        g.appendChild(el("polygon", { points: x2 + "," + y + " " + (x2 - dir * 9) + "," + (y - 4.5) + " " + (x2 - dir * 9) + "," + (y + 4.5) }));
      }
      a.seen.forEach(function (h) {
        var dot = el("circle", { "class": "hop", cx: colX(Math.min(h.column, ncols - 1)), cy: y, r: 3 });
        dot.appendChild(el("title", {}, (ladder.columns[h.column] || "?") + ": packet " + (h.packet + 1) + " at " + h.at_s.toFixed(6) + " s"));
        g.appendChild(dot);
      });
      g.appendChild(el("text", { "class": "label", x: (x1 + x2) / 2, y: y - 5 }, a.label));
      if (a.retransmission || a.stopped) {
        var note = el("text", { "class": "note", x: LEFT + ncols * COL + 8, y: y + 4 });
        if (a.retransmission) { note.appendChild(el("tspan", { "class": "retrans" }, "[TCP Retransmission] ")); }
        if (a.stopped) { note.appendChild(el("tspan", { "class": "why" }, "\u2715 " + a.stopped)); }
        g.appendChild(note);
      }
      g.addEventListener("click", function () { showPacket(a.seen[a.seen.length - 1]); });
      g.addEventListener("keydown", function (e) { if (e.key === "Enter") { showPacket(a.seen[a.seen.length - 1]); } });
      svg.appendChild(g);
    });
    canvas.textContent = "";
    canvas.appendChild(svg);
    pager.textContent = "";
    if (pages > 1) {
      var prev = html("button", "", "\u2190 earlier");
      prev.disabled = page === 0;
      prev.addEventListener("click", function () { drawLadder(box, ladder, page - 1); });
      var next = html("button", "", "later \u2192");
      next.disabled = page >= pages - 1;
      next.addEventListener("click", function () { drawLadder(box, ladder, page + 1); });
      pager.appendChild(prev);
      pager.appendChild(next);
      pager.appendChild(html("span", "muted", "packets " + (first + 1) + "\u2013" + (first + arrows.length) + " of " + total));
    }
  }

  // ---- packet lists: only the rows in view are in the page ----
  var RH = 20, HEAD = 22;
  var COLUMNS = ["No.", "Time", "Source", "Destination", "Protocol", "Length", "Info"];
  var lists = [];

  function List(box, capture) {
    this.box = box;
    this.rows = capture.rows;
    this.shown = capture.rows.map(function (_, i) { return i; });
    var head = html("div", "head");
    COLUMNS.forEach(function (c) { head.appendChild(html("div", "", c)); });
    this.head = head;
    this.space = html("div", "space");
    this.body = html("div", "body");
    box.appendChild(head);
    box.appendChild(this.space);
    box.appendChild(this.body);
    var self = this;
    box.addEventListener("scroll", function () { self.draw(); });
    this.flash = -1;
    this.layout();
  }
  List.prototype.layout = function () {
    this.space.style.height = (this.shown.length * RH) + "px";
    this.draw();
  };
  List.prototype.draw = function () {
    var top = Math.max(0, this.box.scrollTop - HEAD);
    var from = Math.max(0, Math.floor(top / RH) - 10);
    var to = Math.min(this.shown.length, from + Math.ceil(this.box.clientHeight / RH) + 20);
    this.body.textContent = "";
    if (this.shown.length === 0) {
      this.body.appendChild(html("div", "empty", this.rows.length ? "no packet matches the filter" : "(empty: this capture saw no packet)"));
      return;
    }
    for (var i = from; i < to; i++) {
      var r = this.rows[this.shown[i]];
      var row = html("div", "row " + r[7] + (this.shown[i] === this.flash ? " flash" : ""));
      row.style.top = (HEAD + i * RH) + "px";
      row.setAttribute("data-no", String(r[0]));
      for (var c = 0; c < 7; c++) {
        var cell = html("div", c === 0 || c === 5 ? "num" : "", String(r[c]));
        if (c === 6) { cell.title = String(r[6]); }
        row.appendChild(cell);
      }
      this.body.appendChild(row);
    }
  };
  List.prototype.filter = function (text) {
    var needle = text.trim().toLowerCase();
    this.shown = [];
    for (var i = 0; i < this.rows.length; i++) {
      if (!needle || this.rows[i].join(" ").toLowerCase().indexOf(needle) >= 0) { this.shown.push(i); }
    }
    this.box.scrollTop = 0;
    this.layout();
  };
  List.prototype.reveal = function (packet) {
    var at = this.shown.indexOf(packet);
    if (at < 0) { this.filter(""); at = packet; }
    this.flash = packet;
    this.box.scrollTop = Math.max(0, at * RH - this.box.clientHeight / 2);
    this.draw();
  };

  function showPacket(hop) {
    if (!hop) { return; }
    var list = lists[hop.capture];
    if (!list) { return; }
    list.box.parentNode.scrollIntoView({ block: "start" });
    list.reveal(hop.packet);
  }

  document.querySelectorAll(".ladder").forEach(function (box) {
    var ladder = data.ladders[Number(box.getAttribute("data-ladder"))];
    if (ladder) { drawLadder(box, ladder, 0); }
  });
  document.querySelectorAll(".packets").forEach(function (box) {
    var c = Number(box.getAttribute("data-capture"));
    var capture = data.captures[c];
    if (!capture) { return; }
    var list = new List(box, capture);
    lists[c] = list;
    var input = box.parentNode.querySelector(".filter");
    if (input) { input.addEventListener("input", function () { list.filter(input.value); }); }
  });
  document.documentElement.setAttribute("data-drawn", "yes");
})();
