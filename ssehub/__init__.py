"""ssehub: a Server-Sent Events hub. `ssehub.app.create_app` builds the WSGI app."""
