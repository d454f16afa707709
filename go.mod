module github.com/envelopekms/envelope

go 1.26
