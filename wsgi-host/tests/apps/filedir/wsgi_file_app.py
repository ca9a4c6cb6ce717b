"""Loaded with `wsgi-file`; imports a sibling module (the file's directory is on sys.path)."""
import sibling


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [sibling.GREETING]


def make():
    return application
