// A "browser" for $BROWSER: opens the authorization URL and follows every redirect, as a person
// who approves at once would (the test authorization servers redirect straight back).
const url = process.argv[2];
if (!url) process.exit(2);
try {
  const res = await fetch(url, { redirect: "follow" });
  await res.text();
} catch (err) {
  process.stderr.write(`approve-browser: ${err.message}\n`);
  process.exit(1);
}
