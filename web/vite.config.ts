import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// `npm run dev` proxies the API to a stack started with `python -m stack`
// (KLIK_GATEWAY_URL, default the stack's default port).
const gateway = process.env.KLIK_GATEWAY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  // Hashed bundles in static/: the gateway caches that folder for a year (gateway/webapp.py).
  build: { outDir: "dist", assetsDir: "static", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: { "/v1": { target: gateway, changeOrigin: true }, "/openapi.json": gateway },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
