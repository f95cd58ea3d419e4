"""Library of the nightly two-tower recommender: data, features, model, retrieval, ranking, warehouse."""
