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
