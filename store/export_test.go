package store

// SQLReservation exposes sqlReservation to the tests of package store_test, which compare
// it with jobspec.ReservedGPUHours.
const SQLReservation = sqlReservation
