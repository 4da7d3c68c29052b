DROP TABLE IF EXISTS portcullis_throttle;
