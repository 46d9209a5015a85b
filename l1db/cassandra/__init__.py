"""The Apache Cassandra backend of the L1 API."""
