"""A tiny HTTP server for the Prometheus smoke test: serves one gauge on /metrics.

Usage: metric_server.py PORT VALUE   (binds 127.0.0.1 of whatever netns it runs in)
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (f"# HELP rwe2e_smoke_value A constant for the harness smoke test.\n"
                f"# TYPE rwe2e_smoke_value gauge\nrwe2e_smoke_value {sys.argv[2]}\n").encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
