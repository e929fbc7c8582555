// Shows every <time datetime="…Z"> of a page in the reader's local time (the server writes
// UTC, which stays as the element's title). Served as /local-time.js (no inline script).
'use strict';
for (const t of document.querySelectorAll('time[datetime]')) {
  const d = new Date(t.getAttribute('datetime'));
  if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString([], {dateStyle: 'full', timeStyle: 'short'}); }
}
