// The console is served by the gateway at `/` from the files built here (embedded in the
// binary by crates/gatehouse/build.rs): no CDN, no source maps shipped.
import { defineConfig } from "vite";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
});
