// The browser SDK as its CDN bundle exposes it (window.Sentry): the npm package (11.17.0) ships no such bundle,
// so tests/e2e/test_browser_sdk.py builds one from this file with esbuild (--format=iife --global-name=Sentry).
export * from "@sentry/browser";
