// Entry point of the console's web app (skeleton; the views come next).
const root = document.getElementById('app');
if (root) root.textContent = 'FSO console';
