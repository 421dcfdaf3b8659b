-- The prediction log's schema as churn main (commit fdccb6a) created it on sqlite:
-- metadata.create_all's DDL, frozen (tests/monitoring/test_migrations.py upgrades it).
CREATE TABLE alerts (
	id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	kind VARCHAR(64) NOT NULL, 
	feature VARCHAR(64), 
	value FLOAT, 
	threshold FLOAT, 
	message TEXT NOT NULL, 
	window VARCHAR(200) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_alerts_created_at ON alerts (created_at);
CREATE TABLE batches (
	id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	model_name VARCHAR(200) NOT NULL, 
	model_version VARCHAR(200) NOT NULL, 
	source VARCHAR(200) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	n_rows INTEGER NOT NULL, 
	started_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	committed_at DATETIME, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_batches_status ON batches (status);
CREATE UNIQUE INDEX ux_batches_file_model ON batches (sha256, model_name, model_version) WHERE status = 'committed';
CREATE TABLE outcomes (
	id INTEGER NOT NULL, 
	customer_id VARCHAR(64) NOT NULL, 
	churned BOOLEAN NOT NULL, 
	outcome_date DATE NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_outcomes_customer_id ON outcomes (customer_id);
CREATE TABLE predictions (
	id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	customer_id VARCHAR(64), 
	model_name VARCHAR(200) NOT NULL, 
	model_version VARCHAR(200) NOT NULL, 
	probability FLOAT NOT NULL, 
	risk_level VARCHAR(8) NOT NULL, 
	latency_ms FLOAT NOT NULL, 
	email_source VARCHAR(200), 
	gender VARCHAR(32) NOT NULL, 
	"SeniorCitizen" INTEGER NOT NULL, 
	"Partner" VARCHAR(32) NOT NULL, 
	"Dependents" VARCHAR(32) NOT NULL, 
	tenure INTEGER NOT NULL, 
	"PhoneService" VARCHAR(32) NOT NULL, 
	"MultipleLines" VARCHAR(32) NOT NULL, 
	"InternetService" VARCHAR(32) NOT NULL, 
	"OnlineSecurity" VARCHAR(32) NOT NULL, 
	"OnlineBackup" VARCHAR(32) NOT NULL, 
	"DeviceProtection" VARCHAR(32) NOT NULL, 
	"TechSupport" VARCHAR(32) NOT NULL, 
	"StreamingTV" VARCHAR(32) NOT NULL, 
	"StreamingMovies" VARCHAR(32) NOT NULL, 
	"Contract" VARCHAR(32) NOT NULL, 
	"PaperlessBilling" VARCHAR(32) NOT NULL, 
	"PaymentMethod" VARCHAR(32) NOT NULL, 
	"MonthlyCharges" FLOAT NOT NULL, 
	"TotalCharges" FLOAT, 
	batch_id INTEGER, 
	PRIMARY KEY (id)
);
CREATE INDEX "ix_predictions_Contract" ON predictions ("Contract");
CREATE INDEX "ix_predictions_Dependents" ON predictions ("Dependents");
CREATE INDEX "ix_predictions_DeviceProtection" ON predictions ("DeviceProtection");
CREATE INDEX "ix_predictions_InternetService" ON predictions ("InternetService");
CREATE INDEX "ix_predictions_MonthlyCharges_grid" ON predictions (CAST("MonthlyCharges" * 100 + 0.5 AS INTEGER), "MonthlyCharges");
CREATE INDEX "ix_predictions_MultipleLines" ON predictions ("MultipleLines");
CREATE INDEX "ix_predictions_OnlineBackup" ON predictions ("OnlineBackup");
CREATE INDEX "ix_predictions_OnlineSecurity" ON predictions ("OnlineSecurity");
CREATE INDEX "ix_predictions_PaperlessBilling" ON predictions ("PaperlessBilling");
CREATE INDEX "ix_predictions_Partner" ON predictions ("Partner");
CREATE INDEX "ix_predictions_PaymentMethod" ON predictions ("PaymentMethod");
CREATE INDEX "ix_predictions_PhoneService" ON predictions ("PhoneService");
CREATE INDEX "ix_predictions_SeniorCitizen" ON predictions ("SeniorCitizen");
CREATE INDEX "ix_predictions_StreamingMovies" ON predictions ("StreamingMovies");
CREATE INDEX "ix_predictions_StreamingTV" ON predictions ("StreamingTV");
CREATE INDEX "ix_predictions_TechSupport" ON predictions ("TechSupport");
CREATE INDEX "ix_predictions_TotalCharges_grid" ON predictions (CAST("TotalCharges" + 0.5 AS INTEGER), "TotalCharges");
CREATE INDEX ix_predictions_batch_id ON predictions (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX ix_predictions_created_at ON predictions (created_at);
CREATE INDEX ix_predictions_customer_id ON predictions (customer_id);
CREATE INDEX ix_predictions_gender ON predictions (gender);
CREATE INDEX ix_predictions_probability_grid ON predictions (CAST(probability * 10000 + 0.5 AS INTEGER), probability);
CREATE INDEX ix_predictions_tenure ON predictions (tenure);
