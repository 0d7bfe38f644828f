"""The relay tier as separate hosts: replicas, Redis, the upstream and clients in network namespaces of their own."""
