// Keyboard shortcuts for the Workbench. Every page works without this script.
//   /      focus the search box        j / k  move down / up the story list
//   Enter  open the focused story      g s    go to the stories
(function () {
  "use strict";
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll("table.stories tbody td.id a")); };
  var pendingG = false;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) { return; }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (e.key === "/") {
      var q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
      return;
    }
    if (e.key === "j" || e.key === "k") {
      var links = rows();
      if (!links.length) { return; }
      var i = links.indexOf(document.activeElement);
      i = e.key === "j" ? Math.min(links.length - 1, i + 1) : Math.max(0, i - 1);
      links[i].focus();
      e.preventDefault();
      return;
    }
    if (pendingG && e.key === "s") { window.location.href = "/stories"; }
    pendingG = e.key === "g";
  });
})();

// The story list: choosing stories for a change (shift-click chooses a range), groups that
// expand in place, and a notice when new stories come in. Without the script the boxes still
// choose, the groups open as lists, and a reload shows new stories.
(function () {
  "use strict";
  var form = document.getElementById("bulk");
  if (form) {
    var boxes = Array.prototype.slice.call(form.querySelectorAll("td.pick input[type=checkbox]"));
    var page = document.getElementById("pick-page");
    var all = document.getElementById("bulk-all");
    var count = document.getElementById("bulk-count");
    var last = null;
    var say = function () {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (all && all.checked) {
        count.textContent = "Every story matching the filters is chosen";
      } else if (n === 0) {
        count.textContent = "Choose stories with the boxes (shift-click for a range)";
      } else {
        count.textContent = n + (n === 1 ? " story chosen" : " stories chosen");
      }
      if (page) { page.checked = n === boxes.length && n > 0; page.indeterminate = n > 0 && n < boxes.length; }
      form.classList.toggle("choosing", n > 0 || (all && all.checked));
    };
    boxes.forEach(function (b, i) {
      b.addEventListener("click", function (e) {
        if (e.shiftKey && last !== null && last !== i) {
          var lo = Math.min(last, i), hi = Math.max(last, i);
          for (var j = lo; j <= hi; j++) { boxes[j].checked = b.checked; }
        }
        last = i;
        say();
      });
    });
    if (page) {
      page.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = page.checked; });
        say();
      });
    }
    if (all) { all.addEventListener("change", say); }
    say();
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.expand[data-src]"), function (btn) {
    btn.addEventListener("click", function () {
      var row = document.getElementById(btn.getAttribute("aria-controls"));
      if (!row) { return; }
      var open = btn.getAttribute("aria-expanded") === "true";
      btn.setAttribute("aria-expanded", open ? "false" : "true");
      btn.textContent = open ? "Expand" : "Collapse";
      row.hidden = open;
      if (open || row.dataset.loaded) { return; }
      var cell = row.querySelector("td");
      cell.textContent = "Loading…";
      fetch(btn.getAttribute("data-src"), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) {
          // The server's own markup for the list's rows, escaped as every page is.
          cell.innerHTML = html;
          row.dataset.loaded = "1";
        })
        .catch(function () { cell.textContent = "Could not load these stories; open them as a list."; });
    });
  });

  // The list's total, counted after the page is shown.
  Array.prototype.forEach.call(document.querySelectorAll(".total[data-count]"), function (el) {
    if (!window.fetch) { return; }
    el.textContent = "Counting…";
    fetch(el.dataset.count, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (n) { el.textContent = n ? n.text : ""; })
      .catch(function () { el.textContent = ""; });
  });

  var notice = document.getElementById("new-stories");
  if (notice && notice.dataset.count && window.fetch) {
    var check = function () {
      fetch(notice.dataset.count, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (n) {
          if (!n || !n.count) { return; }
          notice.textContent = "";
          var a = document.createElement("a");
          a.href = window.location.pathname + window.location.search;
          a.textContent = "show";
          notice.appendChild(document.createTextNode(n.text + " new since this list was opened — "));
          notice.appendChild(a);
          notice.hidden = false;
        })
        .catch(function () {});
    };
    setInterval(check, 15000);
  }
})();
