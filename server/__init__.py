"""StreamWise server: command line, REST API, WebRTC transport and pages."""
