-- One server, two databases: Airflow's metadata and the recommendations warehouse.
CREATE DATABASE airflow;
CREATE DATABASE recsys;
