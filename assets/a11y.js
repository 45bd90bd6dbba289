// Scrollable regions must be reachable with the keyboard (axe:
// scrollable-region-focusable). Radix tables scroll inside a ScrollArea
// viewport when they are wider than the screen (a phone); such a viewport gets
// tabindex=0 and a name, so Tab reaches it and the arrow keys scroll it.
(function () {
  if (window.__workroomScrollRegions) return;
  window.__workroomScrollRegions = true;
  var pending = false;
  function mark() {
    pending = false;
    var viewports = document.querySelectorAll(".rt-ScrollAreaViewport");
    for (var i = 0; i < viewports.length; i++) {
      var el = viewports[i];
      var scrolls = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.setAttribute("role", "region");
        el.setAttribute("aria-label", "Scrollable table");
        el.dataset.madeFocusable = "1";
      } else if (!scrolls && el.dataset.madeFocusable === "1") {
        el.removeAttribute("tabindex");
        el.removeAttribute("role");
        el.removeAttribute("aria-label");
        delete el.dataset.madeFocusable;
      }
    }
  }
  function schedule() {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(mark);
    }
  }
  new MutationObserver(schedule).observe(document.documentElement, { childList: true, subtree: true });
  window.addEventListener("resize", schedule);
  schedule();
})();
