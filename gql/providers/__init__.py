"""External providers behind small interfaces that the services own."""
