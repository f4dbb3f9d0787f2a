"""Django REST framework building blocks every app's API uses: strict fields, the input
serializer, errors in the API's shape, JSON rendering and parsing, cursor pages, the OpenAPI
schema class and the base views. Nothing here knows the domain or API keys."""
