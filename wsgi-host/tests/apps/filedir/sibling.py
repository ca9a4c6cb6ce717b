GREETING = b"hello from a wsgi-file"
